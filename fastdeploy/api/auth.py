"""Optional API keys: ``Authorization: Bearer KEY``, checked in constant time.

A falcon middleware rather than a check in each resource, so no endpoint can
forget it. Probe paths (``open_paths``) stay open so orchestrators need no key.
"""

from __future__ import annotations

import hmac

import falcon

from fastdeploy.errors import FastDeployError


class Unauthorized(FastDeployError):
    code = "unauthorized"
    http_status = 401

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="fastdeploy"'}


class ApiKeyAuth:
    def __init__(self, keys: list[str], open_paths: list[str]) -> None:
        self.keys = [key.encode() for key in keys]
        self.open_paths = frozenset(open_paths)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.path in self.open_paths:
            return
        scheme, _, presented = (req.get_header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise Unauthorized("this server needs an API key: send 'Authorization: Bearer <key>'")
        if not self.matches(presented.strip().encode()):
            raise Unauthorized("the API key is not valid")

    def matches(self, presented: bytes) -> bool:
        """Compares with every key, whatever matched, so timing says nothing about which or how much."""
        found = False
        for key in self.keys:
            found |= hmac.compare_digest(presented, key)
        return found
