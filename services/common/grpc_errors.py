"""Translate exceptions raised by servicer methods into gRPC status, in one place.

Domain errors (errors.VpError) keep their code and google.rpc details; a naive
datetime is a client error; anything unexpected is logged with its traceback
here and reaches the caller as INTERNAL with no traceback, never UNKNOWN.
"""

from __future__ import annotations

import functools
import inspect
import logging

import grpc
from grpc_status import rpc_status

from services.common.errors import FieldViolation, InvalidArgument, VpError, internal_status
from services.common.timeutil import NaiveDatetimeError

log = logging.getLogger(__name__)


def _status_for(exc: BaseException, method: str):
    if isinstance(exc, VpError):
        return rpc_status.to_status(exc.to_rpc_status())
    if isinstance(exc, NaiveDatetimeError):
        return rpc_status.to_status(InvalidArgument(FieldViolation("timestamp", str(exc))).to_rpc_status())
    log.exception("unhandled error in %s", method)
    return rpc_status.to_status(internal_status(f"internal error in {method}"))


def _wrap(name: str, method):
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream_wrapper(self, request, context):
            try:
                async for item in method(self, request, context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as exc:  # noqa: BLE001 - translated, never leaked
                await context.abort_with_status(_status_for(exc, name))

        return stream_wrapper

    @functools.wraps(method)
    async def unary_wrapper(self, request, context):
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated, never leaked
            await context.abort_with_status(_status_for(exc, name))

    return unary_wrapper


def translate_errors(cls):
    """Class decorator: wrap every RPC method (public, CamelCase) of a servicer."""
    for name, member in list(vars(cls).items()):
        is_rpc = inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member)
        if name[:1].isupper() and is_rpc:
            setattr(cls, name, _wrap(f"{cls.__name__}.{name}", member))
    return cls
