"""``@flow``: a function whose call is a recorded, retried flow run."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar, overload

from headrace.engine.flowrun import run_flow
from headrace.engine.params import coerce_parameters
from headrace.engine.retries import RetryDelay, retry_delays
from headrace.engine.runners import TaskRunner
from headrace.errors import InvalidDefinition, ParameterError
from headrace.secrets import Secret, register_secret

__all__ = ["Flow", "flow"]

if TYPE_CHECKING:
    from headrace.engine.states import State

P = ParamSpec("P")
R = TypeVar("R")
Hook = Callable[..., Any]


class Flow(Generic[P, R]):
    """A function plus its options. Calling it creates a flow run."""

    def __init__(self, fn: Callable[P, R], *, name: str | None = None, description: str | None = None,
                 version: str | None = None, retries: int = 0, retry_delay_seconds: RetryDelay = None,
                 timeout_seconds: float | None = None,
                 task_runner: TaskRunner | type[TaskRunner] | None = None,
                 persist_result: bool | None = None, log_prints: bool = False,
                 tags: Iterable[str] | None = None, validate_parameters: bool = True,
                 on_completion: list[Hook] | None = None, on_failure: list[Hook] | None = None,
                 on_cancellation: list[Hook] | None = None, on_crashed: list[Hook] | None = None) -> None:
        if not callable(fn):
            raise InvalidDefinition(f"@flow decorates a function, not {type(fn).__name__}")
        label: str = name or str(getattr(fn, "__name__", "flow"))
        if retries < 0:
            raise InvalidDefinition(f"flow {label!r}: retries must be >= 0, not {retries}")
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise InvalidDefinition(f"flow {label!r}: timeout_seconds must be > 0, not {timeout_seconds}")
        self.fn = fn
        self.name = label
        self.description = description or inspect.getdoc(fn)
        self.version = version
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        self.delays = retry_delays(retries, retry_delay_seconds)
        self.timeout_seconds = timeout_seconds
        if isinstance(task_runner, type):
            task_runner = task_runner()
        self.task_runner: TaskRunner = task_runner or TaskRunner()
        self.persist_result = persist_result
        self.log_prints = log_prints
        self.tags = tuple(tags or ())
        self.validate_parameters = validate_parameters
        self.on_completion = list(on_completion or [])
        self.on_failure = list(on_failure or [])
        self.on_cancellation = list(on_cancellation or [])
        self.on_crashed = list(on_crashed or [])
        self.signature = inspect.signature(fn)
        self.secret_params = _secret_parameters(fn, self.signature)
        self.is_async = inspect.iscoroutinefunction(fn)
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__wrapped__ = fn
        self.__module__ = getattr(fn, "__module__", __name__)
        self.__qualname__ = getattr(fn, "__qualname__", self.name)

    _OPTIONS = ("name", "description", "version", "retries", "retry_delay_seconds", "timeout_seconds",
                "task_runner", "persist_result", "log_prints", "tags", "validate_parameters",
                "on_completion", "on_failure", "on_cancellation", "on_crashed")

    def with_options(self, **options: Any) -> Flow[P, R]:
        unknown = set(options) - set(self._OPTIONS)
        if unknown:
            raise InvalidDefinition(f"flow {self.name!r}: with_options got unknown options: "
                                    f"{', '.join(sorted(unknown))} (known: {', '.join(self._OPTIONS)})")
        current = {k: getattr(self, k) for k in self._OPTIONS}
        return Flow(self.fn, **{**current, **options})

    @property
    def entrypoint(self) -> str | None:
        """``path/to/file.py:function``, how ``headrace retry`` and deployments find this flow again."""
        try:
            path = inspect.getsourcefile(self.fn)
        except TypeError:
            return None
        if not path:
            return None
        return f"{os.path.abspath(path)}:{self.fn.__name__}"

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ParameterError(f"flow {self.name!r}: {exc}") from None
        bound.apply_defaults()
        parameters = dict(bound.arguments)
        if self.validate_parameters:
            parameters = coerce_parameters(self, parameters)
        for name in self.secret_params & set(parameters):  # Secret[...]: the function gets the real value
            value = parameters[name]
            parameters[name] = value.get_secret_value() if isinstance(value, Secret) else value
            register_secret(parameters[name])
        return parameters

    if TYPE_CHECKING:
        # `flow(..., return_state=True)` is typed as returning a State.
        @overload
        def __call__(self, *args: Any, return_state: Literal[True], **kwargs: Any) -> State: ...

        @overload
        def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return_state = bool(kwargs.pop("return_state", False))
        parameters = self.bind(args, kwargs)
        if self.is_async:
            return _run_in_thread(self, parameters, return_state)  # type: ignore[return-value]
        state = run_flow(self, parameters)
        if return_state:
            return state  # type: ignore[return-value]
        value: R = state.result()
        return value

    def __repr__(self) -> str:
        return f"<Flow {self.name}>"


async def _run_in_thread(fl: Flow[Any, Any], parameters: dict[str, Any], return_state: bool) -> Any:
    """`await my_async_flow(...)`: the flow run gets its own thread and event loop."""
    import asyncio

    state = await asyncio.to_thread(run_flow, fl, parameters)
    return state if return_state else state.result()


def _secret_parameters(fn: Callable[..., Any], signature: inspect.Signature) -> frozenset[str]:
    """Names of the parameters annotated ``Secret[...]`` (or ``Secret``)."""
    import typing

    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {k: p.annotation for k, p in signature.parameters.items()}
    def marked(a: Any) -> bool:
        if isinstance(a, str):  # an annotation that could not be resolved
            return a == "Secret" or a.startswith(("Secret[", "secrets.Secret"))
        return a is Secret or typing.get_origin(a) is Secret

    return frozenset(k for k, a in hints.items() if marked(a))


@overload
def flow(__fn: None = None, **options: Any) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


@overload
def flow(__fn: Callable[P, R], **options: Any) -> Flow[P, R]: ...


def flow(__fn: Callable[P, R] | None = None, **options: Any) -> Any:
    """Decorate a function as a flow: ``@flow`` or ``@flow(name=..., retries=1, ...)``."""
    if __fn is not None:
        return Flow(__fn, **options)
    return lambda fn: Flow(fn, **options)
