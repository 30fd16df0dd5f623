"""The three ways to call a task: directly, ``submit`` and ``map``."""

from __future__ import annotations

from typing import Any

from headrace.engine.futures import TaskFuture, TaskFutureList, unmapped
from headrace.engine.taskrun import STANDALONE_RUNNER, TaskLike, TaskRun
from headrace.errors import ParameterError


def call_task(task: TaskLike, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return_state = kwargs.pop("return_state", False)
    wait_for = kwargs.pop("wait_for", None)
    state = TaskRun(task, args, kwargs, wait_for).execute()
    return state if return_state else state.result()


def submit_task(task: TaskLike, args: tuple[Any, ...], kwargs: dict[str, Any]) -> TaskFuture[Any]:
    wait_for = kwargs.pop("wait_for", None)
    run = TaskRun(task, args, kwargs, wait_for)
    flow = run.flow
    runner = flow.task_runner if flow else STANDALONE_RUNNER
    future: TaskFuture[Any] = TaskFuture(runner.submit(run.execute), task.name, run.id)
    if flow is not None:
        flow.futures.append(future)
    return future


def map_task(task: TaskLike, args: tuple[Any, ...], kwargs: dict[str, Any]) -> TaskFutureList[Any]:
    wait_for = kwargs.pop("wait_for", None)
    bound = task.bind(args, kwargs)
    mapped: dict[str, list[Any]] = {}
    static: dict[str, Any] = {}
    for name, value in bound.items():
        if isinstance(value, TaskFuture):
            value = value.result()
        if isinstance(value, unmapped) or isinstance(value, (str, bytes, dict)) or not _iterable(value):
            static[name] = value.value if isinstance(value, unmapped) else value
        else:
            mapped[name] = list(value)
    if not mapped:
        raise ParameterError(f"task {task.name!r}.map needs at least one iterable argument")
    lengths = {len(v) for v in mapped.values()}
    if len(lengths) > 1:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in mapped.items())
        raise ParameterError(f"task {task.name!r}.map got iterables of different lengths: {sizes}; "
                             "wrap arguments every run gets whole in unmapped(...)")
    futures: TaskFutureList[Any] = TaskFutureList()
    for i in range(lengths.pop()):
        call = {**static, **{k: v[i] for k, v in mapped.items()}}
        futures.append(submit_task(task, (), {**call, "wait_for": wait_for}))
    return futures


def _iterable(value: Any) -> bool:
    try:
        iter(value)
    except TypeError:
        return False
    return True
