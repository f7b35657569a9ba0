"""The classroom's storage: one SQLite file (WAL), schema versioned, one lock.

Everything a class produces is a row here, written as it happens: classes,
students, predictions, simulation jobs and their results, uploaded scenarios,
games and their choices. Stopping the server loses nothing; a job that was
running when it stopped is run again when it starts (same seed, same numbers).

One connection is shared by the request handlers and the worker-pool
callbacks, behind a lock: the classroom's writes are small and few, and one
writer is what SQLite wants anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
"""Bumped whenever the tables change; an older file is migrated, a newer one refused."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS classes (
  id INTEGER PRIMARY KEY, code TEXT UNIQUE NOT NULL, name TEXT NOT NULL,
  secret_hash TEXT NOT NULL, case_id TEXT, phase TEXT NOT NULL DEFAULT 'predict',
  job_id INTEGER, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS students (
  id INTEGER PRIMARY KEY, class_id INTEGER NOT NULL REFERENCES classes(id),
  name TEXT NOT NULL, token TEXT UNIQUE NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS predictions (
  id INTEGER PRIMARY KEY, class_id INTEGER NOT NULL, student_id INTEGER NOT NULL,
  case_id TEXT NOT NULL, p REAL NOT NULL, day TEXT NOT NULL, created REAL NOT NULL,
  UNIQUE (student_id, case_id));
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY, kind TEXT NOT NULL, case_id TEXT NOT NULL, spec TEXT NOT NULL,
  status TEXT NOT NULL, result TEXT, report TEXT, error TEXT, owner TEXT NOT NULL,
  created REAL NOT NULL, finished REAL);
CREATE TABLE IF NOT EXISTS uploads (
  id INTEGER PRIMARY KEY, case_id TEXT UNIQUE NOT NULL, filename TEXT NOT NULL,
  text TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS games (
  id INTEGER PRIMARY KEY, class_id INTEGER, case_id TEXT NOT NULL, seed INTEGER NOT NULL,
  sides TEXT NOT NULL, choices TEXT NOT NULL DEFAULT '[]', status TEXT NOT NULL,
  debrief_job INTEGER, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS seats (
  game_id INTEGER NOT NULL, actor TEXT NOT NULL, token TEXT UNIQUE NOT NULL,
  name TEXT NOT NULL, PRIMARY KEY (game_id, actor));
CREATE TABLE IF NOT EXISTS usage (
  who TEXT NOT NULL, slot INTEGER NOT NULL, n INTEGER NOT NULL,
  PRIMARY KEY (who, slot));
"""

JOIN_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
"""Join codes avoid letters that read alike (I/1, O/0)."""


def default_db_path() -> Path:
    """``$XDG_DATA_HOME/negosim/classroom.sqlite3`` (``~/.local/share`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                          "share")  # fmt: skip
    return Path(base) / "negosim" / "classroom.sqlite3"


def digest(secret: str) -> str:
    """The stored form of a secret (SHA-256 hex): the database never holds the secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same_secret(secret: str, stored_digest: str) -> bool:
    """Whether ``secret`` is the one whose digest is stored (constant time)."""
    return hmac.compare_digest(digest(secret), stored_digest)


class StoreError(Exception):
    """The database file cannot be used (newer schema, not a database)."""


class Store:
    """The SQLite file of one server."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        try:
            self.db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: not a negosim classroom database ({exc})") from None

    def _migrate(self) -> None:
        with self.tx() as db:
            db.executescript(SCHEMA)
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row["value"]) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: written by a newer negosim (schema {version}, this one "
                    f"reads {SCHEMA_VERSION}); upgrade negosim or use another --db"
                )
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A transaction: committed at the end of the block, rolled back on error."""
        with self.lock:
            try:
                yield self.db
                self.db.commit()
            except BaseException:
                self.db.rollback()
                raise

    def one(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        """The first row of ``sql``, or None."""
        with self.lock:
            row: sqlite3.Row | None = self.db.execute(sql, args).fetchone()
            return row

    def all(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Every row of ``sql``."""
        with self.lock:
            return list(self.db.execute(sql, args).fetchall())

    def close(self) -> None:
        """Close the database."""
        with self.lock:
            self.db.close()

    # --- the server's own instructor key -----------------------------------------------

    def server_key(self) -> str:
        """The instructor key of this server (made once, kept in the database)."""
        with self.tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key='instructor_key'").fetchone()
            if row:
                return str(row["value"])
            key = secrets.token_urlsafe(18)
            db.execute("INSERT INTO meta VALUES ('instructor_key', ?)", (key,))
            return key

    # --- classes and students ------------------------------------------------------------

    def create_class(self, name: str) -> tuple[str, str]:
        """A new class: (join code, instructor secret)."""
        secret = secrets.token_urlsafe(18)
        with self.tx() as db:
            for _ in range(100):
                code = "".join(secrets.choice(JOIN_ALPHABET) for _ in range(6))
                if not db.execute("SELECT 1 FROM classes WHERE code=?", (code,)).fetchone():
                    break
            db.execute(
                "INSERT INTO classes (code, name, secret_hash, created) VALUES (?, ?, ?, ?)",
                (code, name, digest(secret), time.time()),
            )
        return code, secret

    def klass(self, code: str) -> sqlite3.Row | None:
        """The class with this join code (any case), or None."""
        return self.one("SELECT * FROM classes WHERE code=?", (code.strip().upper(),))

    def join(self, class_id: int, name: str) -> str:
        """Add a student; return their token (kept in their browser's cookie)."""
        token = secrets.token_urlsafe(24)
        with self.tx() as db:
            db.execute(
                "INSERT INTO students (class_id, name, token, created) VALUES (?, ?, ?, ?)",
                (class_id, name, token, time.time()),
            )
        return token

    def student(self, token: str | None) -> sqlite3.Row | None:
        """The student with this token, or None."""
        if not token:
            return None
        return self.one("SELECT * FROM students WHERE token=?", (token,))

    def update_class(self, class_id: int, **fields: Any) -> None:
        """Set columns of a class (case, phase, job)."""
        cols = ", ".join(f"{k}=?" for k in fields)
        with self.tx() as db:
            db.execute(f"UPDATE classes SET {cols} WHERE id=?", (*fields.values(), class_id))

    def predict(self, class_id: int, student_id: int, case_id: str, p: float, day: str) -> None:
        """Record a student's prediction of a case (a second one replaces the first)."""
        with self.tx() as db:
            db.execute(
                "INSERT INTO predictions (class_id, student_id, case_id, p, day, created) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (student_id, case_id) DO UPDATE SET "
                "p=excluded.p, day=excluded.day, created=excluded.created",
                (class_id, student_id, case_id, p, day, time.time()),
            )

    def prediction(self, student_id: int, case_id: str) -> sqlite3.Row | None:
        """A student's prediction of a case, or None."""
        return self.one(
            "SELECT * FROM predictions WHERE student_id=? AND case_id=?", (student_id, case_id)
        )

    # --- jobs -----------------------------------------------------------------------------

    def add_job(self, kind: str, case_id: str, spec: dict[str, Any], owner: str) -> int:
        """Store a queued job; return its id."""
        with self.tx() as db:
            cur = db.execute(
                "INSERT INTO jobs (kind, case_id, spec, status, owner, created) "
                "VALUES (?, ?, ?, 'queued', ?, ?)",
                (kind, case_id, json.dumps(spec, sort_keys=True), owner, time.time()),
            )
            return int(cur.lastrowid or 0)

    def job(self, job_id: int) -> sqlite3.Row | None:
        """The job with this id, or None."""
        return self.one("SELECT * FROM jobs WHERE id=?", (job_id,))

    def finish_job(
        self, job_id: int, result: Any = None, report: str | None = None, error: str | None = None
    ) -> None:
        """Record a job's result (and report), or its error."""
        with self.tx() as db:
            db.execute(
                "UPDATE jobs SET status=?, result=?, report=?, error=?, finished=? WHERE id=?",
                (
                    "failed" if error else "done",
                    None if result is None else json.dumps(result),
                    report,
                    error,
                    time.time(),
                    job_id,
                ),
            )

    def set_job_status(self, job_id: int, status: str) -> None:
        """Set a job's status (``queued``, ``running``, ``done``, ``failed``)."""
        with self.tx() as db:
            db.execute("UPDATE jobs SET status=? WHERE id=?", (status, job_id))

    def unfinished_jobs(self) -> list[sqlite3.Row]:
        """Jobs left queued or running (by a server that stopped)."""
        return self.all("SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY id")

    # --- rate limits ----------------------------------------------------------------------

    def count_use(self, who: str, window_s: int, limit: int) -> bool:
        """Count one request of ``who`` in the current window; False if over ``limit``."""
        window = int(time.time() // window_s)
        with self.tx() as db:
            db.execute(
                "INSERT INTO usage VALUES (?, ?, 1) ON CONFLICT (who, slot) DO UPDATE "
                "SET n = n + 1",
                (who, window),
            )
            row = db.execute("SELECT n FROM usage WHERE who=? AND slot=?", (who, window)).fetchone()
            db.execute("DELETE FROM usage WHERE who=? AND slot < ?", (who, window))
        return int(row["n"]) <= limit
