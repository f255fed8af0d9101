"""Dagster's SQLite storage, with an event log that does not wait for the disk on every event.

A pipeline run stores about a thousand events (one planned and one evaluation event per dbt
test among them). Dagster's SQLite event log opens a new SQLAlchemy engine for each event and
commits with ``synchronous=FULL``, i.e. an fsync per event: 12-90 ms each on a busy disk,
tens of seconds per run. This storage keeps everything else of Dagster's (same files, same
schema: ``dagster dev`` and the CLI read the same history) and changes two things:

* one engine per database file with an open connection, reused (the least recently used
  are disposed): closing the last connection of a WAL database checkpoints it;
* ``PRAGMA synchronous=NORMAL``: in WAL mode a commit no longer waits for fsync. The database
  stays consistent after any crash; a power cut may lose the last events of a run, which is
  acceptable for run history (the warehouse itself is DuckDB, with its own guarantees).

Selected in ``$DAGSTER_HOME/dagster.yaml`` (see ``orchestration/instance.py``)::

    storage:
      custom:
        module: orchestration.dagster_storage
        class: WarehouseSqliteStorage
        config:
          base_dir: {env: DAGSTER_HOME}
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

# Engines kept open per process: the index shard plus the shards of the latest runs.
ENGINES_KEPT = 16
# Same as Dagster's: how long a writer waits for another process's lock.
BUSY_TIMEOUT_SECONDS = 30


def _relax_fsync(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("pragma synchronous=normal")
    cursor.close()


class BufferedSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's run-sharded SQLite event log with reused engines and no fsync per commit."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> BufferedSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        with self._engines_lock:
            engine = self._engines.get(shard)
            if engine is not None:
                self._engines.move_to_end(shard)
                return engine
            # A pooled connection stays open between events: closing the last connection of a
            # WAL database checkpoints and fsyncs it (~12 ms), once per event with Dagster's NullPool.
            # Connections are used under self._db_lock, one thread at a time.
            engine = create_engine(self.conn_string_for_shard(shard), poolclass=QueuePool,
                                   pool_size=1, max_overflow=4,
                                   connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False})
            event.listen(engine, "connect", _relax_fsync)
            self._engines[shard] = engine
            while len(self._engines) > ENGINES_KEPT:
                _, stale = self._engines.popitem(last=False)
                stale.dispose()
            return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Any]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def dispose(self) -> None:
        super().dispose()
        with self._engines_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


class WarehouseSqliteStorage(DagsterSqliteStorage):
    """Dagster's default SQLite storage (runs, schedules) with the buffered event log."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        super().__init__(base_dir, inst_data=inst_data)
        self._event_log_storage = BufferedSqliteEventLogStorage(_event_logs_directory(base_dir))

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Any) -> WarehouseSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)

    @property
    def event_storage_data(self) -> ConfigurableClassData | None:
        return ConfigurableClassData(
            __name__, BufferedSqliteEventLogStorage.__name__,
            yaml.dump({"base_dir": _event_logs_directory(self.base_dir)}, default_flow_style=False),
        )
