"""Runs one of the SQLite peers (py_curation.py, py_cursor.py,
py_quality_stats.py, py_drift_e2e.py) unchanged against PostgreSQL: its
sqlite3.connect returns a psycopg2 connection to the URL given in place of
the database file, whose execute runs the same SQL (placeholders ? written
as %s) on a client-side cursor, the psycopg2 default, and returns it.

    /usr/bin/python3 pg_peer.py PEER.py URL [PEER ARGS...]

With --window N before PEER (py_quality_stats.py only), the peer's
stats() then runs once more with every one of the N events as the window
and one more line of JSON gives its wall-clock seconds and results. A DB
that is not a postgres:// URL is a SQLite file, opened by sqlite3 itself.
"""
import json
import os
import runpy
import sqlite3
import sys
import time

import psycopg2


class Connection:
    """The part of sqlite3.Connection the peers use, over psycopg2."""

    def __init__(self, url):
        self.con = psycopg2.connect(url.replace("postgres://", "postgresql://", 1))
        self.con.autocommit = True

    def execute(self, sql, params=()):
        cur = self.con.cursor()
        cur.execute(sql.replace("?", "%s"), params)
        return cur

    def close(self):
        self.con.close()


def main():
    args = sys.argv[1:]
    window = None
    if args[0] == "--window":
        window, args = int(args[1]), args[2:]
    peer, db = args[0], args[1]
    if db.startswith(("postgres://", "postgresql://")):
        sqlite3.connect = lambda _db, *a, **k: Connection(db)
    sys.path.insert(0, os.path.dirname(os.path.abspath(peer)))
    sys.argv = args
    peer_globals = runpy.run_path(peer, run_name="__main__")
    if window:
        con = sqlite3.connect(db)
        t0 = time.perf_counter()
        s = peer_globals["stats"](con, "bench", window)
        print(json.dumps({"seconds_window": time.perf_counter() - t0,
                          "rolling_average": s["rolling_average"], "p50": s["p50"],
                          "p90": s["p90"], "pass_rates": s["pass_rates"]}))


main()
