"""The DRF classes REST_FRAMEWORK names (the JSON parser, list paging), in a module of their own: rest_framework.views
reads these settings while it is being imported, so this module must not import it (nor loanservice.api)."""

from __future__ import annotations

import codecs
import math

from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.response import Response
from rest_framework.utils import json

from . import second_factor
from .middleware import NUL_MESSAGE
from .prepared import PreparedRead


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"number out of range: {text[:40]}")
    return number


class ObjectJSONParser(JSONParser):
    """Every JSON body of the API is an object: `true`, `[1, 2]`, `"text"`, `12` or `null` is a 400 here, once,
    before any view reads a field from it. So is a number too large for a float (`1e999`, which would be an
    infinity no field can hold; NaN and Infinity are refused already, strict JSON) and nesting deeper than
    Python's recursion limit (DRF's parser lets that RecursionError out as a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = json.load(codecs.getreader(get_encoding(parser_context or {}))(stream), parse_float=_finite)
        except (ValueError, RecursionError) as exc:
            raise exceptions.ValidationError(
                {"non_field_errors": [f"请求体不是有效的JSON / The body is not valid JSON: {str(exc)[:200]}"]}) from None
        if not isinstance(data, dict):
            raise exceptions.ValidationError(
                {"non_field_errors": ["请求体须为JSON对象 / The body must be a JSON object ({...})."]})
        named = _with_nul(data)
        if named:
            raise exceptions.ValidationError(dict.fromkeys(named, [NUL_MESSAGE]))
        return data


def _with_nul(data: dict) -> list[str]:
    """The top-level fields holding a NUL character anywhere inside (Postgres text cannot hold one; see
    loanservice.middleware.NulCharacterMiddleware for the path, query and forms)."""
    named = []
    for name, value in data.items():
        stack = [name, value]
        while stack:
            item = stack.pop()
            if isinstance(item, str) and "\0" in item:
                named.append(name.replace("\0", "\\0"))
                break
            if isinstance(item, dict):
                stack += [*item.keys(), *item.values()]
            elif isinstance(item, list):
                stack += item
    return named


def _whole_number(request, name: str, *, minimum: int, default: int) -> int:
    raw = request.query_params.get(name, "")
    if raw == "":
        return default
    digits = raw.lstrip("0") or "0"
    # More than 18 digits is more than any row count (and than the database's integers): taken as 10**18.
    value = (int(digits) if len(digits) <= 18 else 10**18) if raw.isascii() and raw.isdigit() else None
    if value is None or value < minimum:
        raise exceptions.ValidationError({name: [f"须为不小于{minimum}的整数 / Must be a whole number, at least {minimum}."]})
    return value


class LimitOffset(LimitOffsetPagination):
    """How every API list pages: `limit` rows (default PAGE_SIZE, 50; more than 200 is taken as 200) from `offset`.
    A `limit` or `offset` that is not a whole number in range is a 400 naming it, never silently the default."""

    max_limit = 200

    def get_limit(self, request):
        return min(_whole_number(request, self.limit_query_param, minimum=1, default=self.default_limit), self.max_limit)

    def get_offset(self, request):
        return _whole_number(request, self.offset_query_param, minimum=0, default=0)

    def get_schema_operation_parameters(self, view):
        return [
            {"name": self.limit_query_param, "in": "query", "required": False,
             "description": f"rows per page (default {self.default_limit}; more than {self.max_limit} is taken as {self.max_limit})",
             "schema": {"type": "integer", "minimum": 1, "default": self.default_limit}},
            {"name": self.offset_query_param, "in": "query", "required": False,
             "description": "rows to skip before the page", "schema": {"type": "integer", "minimum": 0, "default": 0}},
        ]


class ArrayLimitOffset(LimitOffset):
    """The same paging for the lists whose contract is a bare JSON array: the page is the body, the total is in
    `X-Total-Count` and the neighbouring pages in `Link` (rel next / prev)."""

    def get_paginated_response(self, data):
        links = [f'<{url}>; rel="{rel}"' for rel, url in (("next", self.get_next_link()), ("prev", self.get_previous_link()))
                 if url]
        headers = {"X-Total-Count": str(self.count), **({"Link": ", ".join(links)} if links else {})}
        return Response(data, headers=headers)

    def get_paginated_response_schema(self, schema):
        return schema

    def get_schema_operation_parameters(self, view):
        limit, offset = super().get_schema_operation_parameters(view)
        limit["description"] += "; the total is in the X-Total-Count header, the next page in Link"
        return [limit, offset]


def _token_shape(key):
    from rest_framework.authtoken.models import Token

    return Token.objects.select_related("user").filter(key=key)


_TOKEN = PreparedRead(_token_shape, marker="(no such key)")


class PreparedTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, its read of the token and user compiled once per process (loanservice.prepared):
    every API request pays it."""

    def authenticate_credentials(self, key):
        try:
            token = _TOKEN.get(key)
        except self.get_model().DoesNotExist:
            token = None
        if token is None or not token.user.is_active:
            return super().authenticate_credentials(key)  # refused: by DRF itself, in its words
        return (token.user, token)


class VerifiedSessionAuthentication(SessionAuthentication):
    """Session authentication for the API that refuses a staff session still waiting at the second factor (the
    pages hold it at the verification page; the API would otherwise be a way round it)."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None and second_factor.second_factor_required(result[0]) \
                and not second_factor.is_verified(request._request):
            return None
        return result
