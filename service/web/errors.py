"""Error bodies in the shape each protocol's clients parse, chosen by the request's path, defined once for the
guard (401, 413, 415, 503), the validation handler and the routes:

- our own routes: `{"detail": ...}` (FastAPI's shape);
- OpenAI's (`/v1/...`): `{"error": {"message", "type", "param", "code"}}`; the `openai` SDK picks its exception
  class from the status (400 BadRequestError, 401 AuthenticationError, 404 NotFoundError, 422, 429, >= 500) and
  its message from `error.message`;
- TGI's (`POST /`, `/generate_stream`) and the Hugging Face task routes (`/hf/...`): `{"error", "error_type"}`;
  `huggingface_hub` raises its `ValidationError` for `error_type: "validation"`, `OverloadedError` for
  "overloaded", `GenerationError` for "generation".
"""

from __future__ import annotations

from typing import Any

OPENAI_PREFIX = "/v1/"
TGI_PATHS = frozenset({"/", "/generate_stream"})
HF_PREFIX = "/hf/"

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
}


def openai_error(status: int, message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def tgi_error(status: int, message: str) -> dict[str, Any]:
    """TGI's error types; a 401 has none (TGI has no keys), so `huggingface_hub` raises its HTTP error with the
    status instead of an "unknown" generation error."""
    if status == 401:
        return {"error": message}
    if status in (400, 413, 415, 422):
        kind = "validation"
    elif status in (429, 503):
        kind = "overloaded"
    else:
        kind = "generation"
    return {"error": message, "error_type": kind}


def protocol_of(path: str) -> str:
    """ "openai", "tgi" (TGI and the Hugging Face task routes) or "detail" (our own routes)."""
    if path.startswith(OPENAI_PREFIX):
        return "openai"
    if path in TGI_PATHS or path.startswith(HF_PREFIX):
        return "tgi"
    return "detail"


def error_body(path: str, status: int, detail: Any, param: str | None = None) -> dict[str, Any]:
    """The body of an error answer to a request for `path`."""
    protocol = protocol_of(path)
    if protocol == "detail":
        return {"detail": detail}
    message = detail if isinstance(detail, str) else _message(detail)
    if protocol == "openai":
        return openai_error(status, message, param)
    return tgi_error(status, message)


def _message(detail: Any) -> str:
    """One sentence from FastAPI-style validation details: "`field`: what is allowed; ..."."""
    if isinstance(detail, list):
        parts = []
        for e in detail:
            loc = [str(p) for p in e.get("loc", []) if p != "body"]
            parts.append(f"`{'.'.join(loc)}`: {e.get('msg', '')}" if loc else str(e.get("msg", "")))
        return "; ".join(parts)
    return str(detail)
