#!/usr/bin/python3
"""The original system's connection pools, benchmarked like pgxpool in cmd/bench.

Each benchmark times one query as an application makes it -- take a
connection, run SELECT 1, read the row, give the connection back -- at
concurrency 1, for about --benchtime seconds after a short warm-up, and
prints a JSON list of {"name", "n", "ns_per_op"} on stdout.

  psycopg2 SimpleConnectionPool(1, 10)    what the original gateway used
  SQLAlchemy QueuePool, pre-ping on       with the original's MLFLOW_SQLALCHEMY_* values
  one psycopg2 connection, autocommit      the floor: one round trip, no pool
  psycopg2.connect per query              for reference

Run it with Debian's python3 (python3-psycopg2, python3-sqlalchemy):

  /usr/bin/python3 scripts/bench/pools.py --dsn postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
"""

import argparse
import json
import sys
import time

import psycopg2
import psycopg2.pool
import sqlalchemy

# The original system's MLFLOW_SQLALCHEMY_* values, with SQLAlchemy's meaning
# (docs/DESIGN-NOTES.md §4).
SQLALCHEMY_POOL = dict(
    pool_size=10,
    max_overflow=20,
    pool_timeout=30,
    pool_recycle=1800,
    pool_pre_ping=True,
)


def measure(op, benchtime):
    """Run op for a warm-up, then until benchtime seconds have passed."""
    for _ in range(100):
        op()
    n = 0
    start = time.perf_counter_ns()
    deadline = start + int(benchtime * 1e9)
    while True:
        for _ in range(50):
            op()
        n += 50
        now = time.perf_counter_ns()
        if now >= deadline:
            return n, (now - start) / n


def psycopg2_pool(dsn):
    pool = psycopg2.pool.SimpleConnectionPool(1, 10, dsn)

    def op():
        conn = pool.getconn()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                if cur.fetchone()[0] != 1:
                    raise RuntimeError("SELECT 1 did not return 1")
        finally:
            pool.putconn(conn)

    return op, pool.closeall


def sqlalchemy_pool(dsn):
    url = "postgresql+psycopg2://" + dsn.split("://", 1)[1]
    engine = sqlalchemy.create_engine(url, **SQLALCHEMY_POOL)
    select1 = sqlalchemy.text("SELECT 1")

    def op():
        with engine.connect() as conn:
            if conn.execute(select1).scalar() != 1:
                raise RuntimeError("SELECT 1 did not return 1")

    return op, engine.dispose


def psycopg2_autocommit(dsn):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()

    def op():
        cur.execute("SELECT 1")
        if cur.fetchone()[0] != 1:
            raise RuntimeError("SELECT 1 did not return 1")

    return op, conn.close


def psycopg2_connect(dsn):
    def op():
        conn = psycopg2.connect(dsn)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                if cur.fetchone()[0] != 1:
                    raise RuntimeError("SELECT 1 did not return 1")
        finally:
            conn.close()

    return op, lambda: None


BENCHMARKS = [
    ("Pool/psycopg2-SimpleConnectionPool", psycopg2_pool),
    ("Pool/sqlalchemy-QueuePool-pre-ping", sqlalchemy_pool),
    ("Pool/psycopg2-one-conn-autocommit", psycopg2_autocommit),
    ("Pool/psycopg2-connect-per-query", psycopg2_connect),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", required=True, help="a libpq URI, postgres://user@host:port/db?sslmode=disable")
    ap.add_argument("--benchtime", type=float, default=1.0, help="seconds per benchmark")
    args = ap.parse_args()
    results = []
    for name, make in BENCHMARKS:
        op, close = make(args.dsn)
        try:
            n, ns = measure(op, args.benchtime)
        finally:
            close()
        results.append({"name": name, "n": n, "ns_per_op": ns})
    json.dump(results, sys.stdout)
    print()


if __name__ == "__main__":
    main()
