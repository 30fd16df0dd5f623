"""``@task``: a plain function with orchestration options attached."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar, overload

from headrace.engine.calls import call_task, map_task, submit_task
from headrace.engine.futures import unmapped
from headrace.engine.retries import RetryDelay, retry_delays
from headrace.errors import InvalidDefinition, ParameterError

__all__ = ["Task", "task", "unmapped"]

if TYPE_CHECKING:
    from headrace.engine.states import State

P = ParamSpec("P")
R = TypeVar("R")

Hook = Callable[..., Any]


class Task(Generic[P, R]):
    """A function plus its options. Calling it inside a flow creates a task run."""

    def __init__(self, fn: Callable[P, R], *, name: str | None = None, description: str | None = None,
                 retries: int = 0, retry_delay_seconds: RetryDelay = None,
                 retry_jitter_factor: float | None = None, timeout_seconds: float | None = None,
                 cache_key_fn: Callable[..., str | None] | None = None,
                 cache_expiration: timedelta | None = None, refresh_cache: bool = False,
                 tags: Iterable[str] | None = None, persist_result: bool | None = None,
                 result_serializer: str = "json", log_prints: bool = False,
                 on_completion: list[Hook] | None = None, on_failure: list[Hook] | None = None,
                 retry_condition_fn: Callable[..., bool] | None = None,
                 inputs: Iterable[Any] | None = None, outputs: Iterable[Any] | None = None) -> None:
        if not callable(fn):
            raise InvalidDefinition(f"@task decorates a function, not {type(fn).__name__}")
        label = name or getattr(fn, "__name__", "task")
        if retries < 0:
            raise InvalidDefinition(f"task {label!r}: retries must be >= 0, not {retries}")
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise InvalidDefinition(f"task {label!r}: timeout_seconds must be > 0, not {timeout_seconds}")
        if result_serializer not in ("json", "pickle"):
            raise InvalidDefinition(f"task {label!r}: result_serializer must be 'json' or 'pickle', "
                                    f"not {result_serializer!r}")
        if cache_key_fn is not None and not callable(cache_key_fn):
            raise InvalidDefinition(f"task {label!r}: cache_key_fn must be a function such as task_input_hash")
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", "task"))
        self.description = description or inspect.getdoc(fn)
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        self.delays = retry_delays(retries, retry_delay_seconds)
        self.retry_jitter_factor = retry_jitter_factor
        self.timeout_seconds = timeout_seconds
        self.cache_key_fn = cache_key_fn
        self.cache_expiration = cache_expiration
        self.refresh_cache = refresh_cache
        self.tags = tuple(tags or ())
        self.persist_result = persist_result
        self.result_serializer = result_serializer
        self.log_prints = log_prints
        self.on_completion = list(on_completion or [])
        self.on_failure = list(on_failure or [])
        self.retry_condition_fn = retry_condition_fn
        # Datasets the body reads and writes outside headrace.io (see headrace.lineage)
        self.inputs = _datasets(str(label), "inputs", inputs)
        self.outputs = _datasets(str(label), "outputs", outputs)
        self.signature = inspect.signature(fn)
        self.is_async = inspect.iscoroutinefunction(fn)
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__wrapped__ = fn
        self.__module__ = getattr(fn, "__module__", __name__)
        self.__qualname__ = getattr(fn, "__qualname__", self.name)

    _OPTIONS = ("name", "description", "retries", "retry_delay_seconds", "retry_jitter_factor",
                "timeout_seconds", "cache_key_fn", "cache_expiration", "refresh_cache", "tags",
                "persist_result", "result_serializer", "log_prints", "on_completion", "on_failure",
                "retry_condition_fn", "inputs", "outputs")

    def with_options(self, **options: Any) -> Task[P, R]:
        """A copy of this task with some options changed."""
        unknown = set(options) - set(self._OPTIONS)
        if unknown:
            raise InvalidDefinition(f"task {self.name!r}: with_options got unknown options: "
                                    f"{', '.join(sorted(unknown))} (known: {', '.join(self._OPTIONS)})")
        current = {k: getattr(self, k) for k in self._OPTIONS}
        return Task(self.fn, **{**current, **options})

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults applied."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ParameterError(f"task {self.name!r}: {exc}") from None
        bound.apply_defaults()
        return dict(bound.arguments)

    if TYPE_CHECKING:
        # `task(..., return_state=True)` is typed as returning a State.
        @overload
        def __call__(self, *args: Any, return_state: Literal[True], **kwargs: Any) -> State: ...

        @overload
        def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.is_async:
            # `await my_task(...)`: the task run happens on a worker thread, so several
            # awaited tasks (asyncio.gather) run at once.
            return _call_in_thread(call_task, self, args, kwargs)
        return call_task(self, args, kwargs)

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        """Start a task run on the flow's task runner; returns a :class:`TaskFuture`."""
        return submit_task(self, args, kwargs)

    def map(self, *args: Any, **kwargs: Any) -> Any:
        """Submit one task run per element of the iterable arguments (``unmapped(x)`` stays whole)."""
        return map_task(self, args, kwargs)

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        # A task defined as a method binds like one.
        if instance is None:
            return self
        bound = self.with_options()
        bound.fn = self.fn.__get__(instance, owner)  # type: ignore[attr-defined]
        bound.signature = inspect.signature(bound.fn)
        return bound

    def __repr__(self) -> str:
        return f"<Task {self.name}>"


def _datasets(label: str, option: str, values: Iterable[Any] | None) -> tuple[Any, ...]:
    """Declared datasets: URLs or paths (``"postgres://db:5432/dwh.public.orders"``) or DatasetRefs."""
    if values is None:
        return ()
    if isinstance(values, str) or hasattr(values, "namespace"):
        values = [values]
    out = tuple(values)
    for v in out:
        if not (isinstance(v, str) and v.strip()) and not hasattr(v, "__fspath__") \
                and not (hasattr(v, "namespace") and hasattr(v, "name")):
            raise InvalidDefinition(f"task {label!r}: {option} must be dataset URLs, paths or "
                                    f"headrace.lineage.DatasetRef, not {v!r}")
    return out


async def _call_in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(fn, *args)


@overload
def task(__fn: None = None, **options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...


@overload
def task(__fn: Callable[P, R], **options: Any) -> Task[P, R]: ...


def task(__fn: Callable[P, R] | None = None, **options: Any) -> Any:
    """Decorate a function as a task: ``@task`` or ``@task(retries=3, ...)``."""
    if __fn is not None:
        return Task(__fn, **options)
    return lambda fn: Task(fn, **options)
