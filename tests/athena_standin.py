"""Athena for tests, without AWS: the API calls go through moto, the SQL runs on DuckDB.

:class:`AthenaStandIn` takes the calls the daily build makes (start, get, stop a query
execution) on a boto3 Athena client talking to a moto server, which keeps the
executions, their queries and the workgroups. Each query started is also executed:
parsed as Athena's dialect (Trino) and transpiled by sqlglot for DuckDB
(``tests.test_athena_queries.to_duckdb``, which refuses what sqlglot cannot carry
over), run over the raw objects of the moto bucket through a view that mirrors the
Glue table, and its result written where Athena writes it: ``<result location><id>.csv``
quoted as Athena quotes, and ``<id>.csv.metadata``. An ``UNLOAD`` writes its Parquet
files to its ``TO`` folder (refused when files are there, as Athena refuses) and its
manifest ``<id>-manifest.csv``. Failures are Athena's: state FAILED with a reason.

Moto does not run SQL, enforce a workgroup's result location or honour
``ClientRequestToken``; the stand-in adds those three on top.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from tests.test_athena_queries import to_duckdb

_DAY = re.compile(r"\"year\" = '(\d{4})' AND \"month\" = '(\d{2})' AND \"day\" = '(\d{2})'")
_UNLOAD = re.compile(
    r"^UNLOAD \(\n(?P<select>.*)\n\)\nTO '(?P<to>[^']+)'\nWITH \((?P<options>[^)]*)\)",
    re.DOTALL,
)


def athena_csv_text(header: list[str], rows: list[tuple[Any, ...]]) -> str:
    """A result as Athena writes it: every value quoted, NULL as nothing, ``\\n`` ends."""

    def cell(value: Any) -> str:
        if value is None:
            return ""
        return '"' + str(value).replace('"', '""') + '"'

    return "".join(",".join(cell(v) for v in row) + "\n" for row in [tuple(header), *rows])


@dataclass
class AthenaStandIn:
    athena: Any  # boto3 Athena client on the moto server
    s3: Any  # boto3 S3 client on the same server
    bucket: str
    workdir: Path
    database: str = "owned_analytics"
    table: str = "events"
    # Test controls: a reason to fail a query with (None: run it), and queries to hold
    # RUNNING (started, no result yet).
    fail: Callable[[str], str | None] = lambda sql: None
    hold: Callable[[str], bool] = lambda sql: False
    landed: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    _tokens: dict[str, str] = field(default_factory=dict)
    _outcomes: dict[str, tuple[str, str]] = field(default_factory=dict)
    _scanned: dict[str, int] = field(default_factory=dict)
    _held: dict[str, tuple[str, str]] = field(default_factory=dict)

    # --- the API --------------------------------------------------------------------

    def start_query_execution(self, **kwargs: Any) -> dict[str, Any]:
        token = kwargs.pop("ClientRequestToken", None)
        if token is not None and token in self._tokens:
            return {"QueryExecutionId": self._tokens[token]}
        location = kwargs.pop("ResultConfiguration", {}).get("OutputLocation")
        if kwargs.get("WorkGroup"):
            group = self.athena.get_work_group(WorkGroup=kwargs["WorkGroup"])["WorkGroup"]
            enforced = group["Configuration"]["ResultConfiguration"]["OutputLocation"]
            location = enforced  # EnforceWorkGroupConfiguration, as the stack sets it
        started = self.athena.start_query_execution(
            **kwargs, ResultConfiguration={"OutputLocation": location}
        )
        query_id = str(started["QueryExecutionId"])
        # moto names the result object <location><id>.csv, as Athena does.
        execution = self.athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        location = execution["ResultConfiguration"]["OutputLocation"]
        if token is not None:
            self._tokens[token] = query_id
        self.started.append(query_id)
        sql = str(kwargs["QueryString"])
        if self.hold(sql):
            self._held[query_id] = (sql, location)
            self._outcomes[query_id] = ("RUNNING", "")
        else:
            self._run(query_id, sql, location)
        return {"QueryExecutionId": query_id}

    def get_query_execution(self, QueryExecutionId: str) -> dict[str, Any]:
        found = self.athena.get_query_execution(QueryExecutionId=QueryExecutionId)
        execution = found["QueryExecution"]
        state, reason = self._outcomes.get(QueryExecutionId, ("SUCCEEDED", ""))
        execution["Status"]["State"] = state
        if reason:
            execution["Status"]["StateChangeReason"] = reason
        execution["Statistics"]["DataScannedInBytes"] = self._scanned.get(QueryExecutionId, 0)
        return found  # type: ignore[no-any-return]

    def stop_query_execution(self, QueryExecutionId: str) -> dict[str, Any]:
        self._held.pop(QueryExecutionId, None)
        self._outcomes[QueryExecutionId] = ("CANCELLED", "Query was cancelled by user")
        return {}

    def finish_held(self) -> None:
        """Let the queries held RUNNING run now (their results land)."""
        for query_id, (sql, location) in list(self._held.items()):
            del self._held[query_id]
            del self._outcomes[query_id]
            self._run(query_id, sql, location)

    # --- running a query ------------------------------------------------------------

    def _run(self, query_id: str, sql: str, location: str) -> None:
        reason = self.fail(sql)
        if reason:
            self._outcomes[query_id] = ("FAILED", reason)
            return
        day = _DAY.search(sql)
        day_prefix = f"raw/{day.group(1)}/{day.group(2)}/{day.group(3)}/" if day else "raw/"
        con = duckdb.connect()
        try:
            con.execute("SET threads TO 1")
            self._scanned[query_id] = self._mirror_glue_table(con, query_id, day_prefix)
            unload = _UNLOAD.match(sql)
            if unload:
                self._unload(con, query_id, unload, location)
            else:
                cursor = con.execute(to_duckdb(sql))
                header = [column[0] for column in cursor.description]
                text = athena_csv_text(header, cursor.fetchall())
                self._put(location, text.encode("utf-8"))
                self._put(location + ".metadata", b"\x00stand-in metadata")
        except duckdb.Error as exc:
            self._outcomes[query_id] = ("FAILED", f"GENERIC_INTERNAL_ERROR: {exc}")
        finally:
            con.close()
            shutil.rmtree(self.workdir / query_id, ignore_errors=True)
        self._outcomes.setdefault(query_id, ("SUCCEEDED", ""))

    def _mirror_glue_table(self, con: duckdb.DuckDBPyConnection, query_id: str, prefix: str) -> int:
        """The Glue table over this bucket's raw objects (downloaded), ``"$path"`` their
        s3:// URIs; says how many bytes the day's objects hold (what Athena scans)."""
        root = self.workdir / query_id
        scanned = 0
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix="raw/"):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.endswith("/") or key.count("/") != 5:
                    continue
                if key.startswith(prefix):
                    scanned += int(item["Size"])
                path = root / key
                path.parent.mkdir(parents=True, exist_ok=True)
                self.s3.download_file(self.bucket, key, str(path))
        segment = "/raw/([0-9]{4})/([0-9]{2})/([0-9]{2})/([0-9]{2})/[^/]+$"
        partitions = ", ".join(
            f"regexp_extract(filename, '{segment}', {n}) AS {name}"
            for n, name in enumerate(("year", "month", "day", "hour"), start=1)
        )
        s3_path = f"'s3://{self.bucket}/' || substr(filename, {len(str(root)) + 2})"
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {self.database}")
        if not list(root.glob("raw/*/*/*/*/*")):
            con.execute(
                f"CREATE VIEW {self.database}.{self.table} AS SELECT NULL::VARCHAR AS line, "
                "'' AS year, '' AS month, '' AS day, '' AS hour, '' AS \"$path\" WHERE false"
            )
            return scanned
        con.execute(
            f"CREATE VIEW {self.database}.{self.table} AS SELECT line, {partitions}, "
            f'{s3_path} AS "$path" '
            f"FROM read_csv('{root}/raw/*/*/*/*/*', columns={{'line': 'VARCHAR'}}, "
            "header=false, delim='\x01', quote='', escape='', auto_detect=false, filename=true, "
            "compression='gzip', new_line='\\n', strict_mode=false)"
        )
        return scanned

    def _unload(
        self, con: duckdb.DuckDBPyConnection, query_id: str, unload: re.Match[str], location: str
    ) -> None:
        target = unload.group("to")
        bucket, prefix = target[5:].split("/", 1)
        if self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("Contents"):
            self._outcomes[query_id] = (
                "FAILED",
                f"HIVE_PATH_ALREADY_EXISTS: Target directory for table already exists: {target}",
            )
            return
        options = dict(re.findall(r"(\w+) = '([^']*)'", unload.group("options")))
        assert options["format"] == "PARQUET", options
        local = self.workdir / query_id / "unload.parquet"
        local.parent.mkdir(parents=True, exist_ok=True)
        select = to_duckdb(unload.group("select"))
        con.execute(
            f"COPY ({select}) TO '{local}' "
            f"(FORMAT parquet, COMPRESSION {options['compression'].lower()})"
        )
        uri = f"{target}{query_id}_00000_{uuid.uuid4().hex[:8]}"
        self.s3.upload_file(str(local), bucket, uri[len(f"s3://{bucket}/") :])
        manifest = location.removesuffix(".csv") + "-manifest.csv"
        self._put(manifest, (uri + "\n").encode())
        self._put(location + ".metadata", b"\x00stand-in metadata")

    def _put(self, uri: str, body: bytes) -> None:
        bucket, key = uri[5:].split("/", 1)
        self.s3.put_object(Bucket=bucket, Key=key, Body=body)
        self.landed.append(key)
