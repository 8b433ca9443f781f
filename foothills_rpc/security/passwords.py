"""Argon2id password hashing (passlib over argon2-cffi), run off the event loop.

Hashing is deliberately slow; a bounded thread pool keeps one login from stalling other RPCs and
caps how many hashes run at once (argon2-cffi releases the GIL while it works).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from concurrent.futures import ThreadPoolExecutor

from passlib.context import CryptContext

from foothills_rpc.config import Argon2Params


class PasswordHasher:
    def __init__(self, params: Argon2Params, *, max_threads: int | None = None) -> None:
        self._context = CryptContext(
            schemes=["argon2"],
            argon2__type="ID",
            argon2__memory_cost=params.memory_kib,
            argon2__rounds=params.time_cost,
            argon2__parallelism=params.parallelism,
        )
        self._pool = ThreadPoolExecutor(
            max_workers=max_threads or os.cpu_count() or 2, thread_name_prefix="argon2"
        )
        # Verified against when an email is unknown, so both answers cost the same time.
        self._dummy_hash = self._context.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._context.hash, password)

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """True when `password` matches; with no hash, spends the same effort and returns False."""
        target = password_hash or self._dummy_hash
        ok = await asyncio.get_running_loop().run_in_executor(
            self._pool, self._context.verify, password, target
        )
        return bool(ok) and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than today's."""
        return bool(self._context.needs_update(password_hash))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
