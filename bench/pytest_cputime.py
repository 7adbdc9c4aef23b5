"""A pytest plugin that reports the CPU seconds (user + sys, of pytest and the child processes it waited for) of each
test, setup and teardown included: on a shared machine the wall times of `--durations` grow with other people's
load, CPU seconds much less. Works with pytest-xdist too (each worker measures its own tests and the numbers travel
with the teardown report): then it also prints each worker's timeline, how long it was busy and when it finished,
which shows how evenly the files were spread.

    PYTHONPATH=.:bench pytest tests/ -p pytest_cputime --durations=0 [--cpu-json out.json]"""
import json
import os
import resource
import time

import pytest

_rows = {}  # nodeid -> (cpu s, wall s, worker, start, end); filled in the controller (or the only process)
_started = {}  # nodeid -> (cpu, perf_counter, time): in the process that runs the test


def _cpu():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def pytest_addoption(parser):
    parser.addoption("--cpu-json", default=None, help="write each test's CPU and wall seconds here")


def pytest_runtest_logstart(nodeid, location):
    _started.setdefault(nodeid, (_cpu(), time.perf_counter(), time.time()))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if call.when == "teardown" and item.nodeid in _started:
        cpu0, wall0, start = _started.pop(item.nodeid)
        report.user_properties.append(("cputime", (_cpu() - cpu0, time.perf_counter() - wall0,
                                                   os.environ.get("PYTEST_XDIST_WORKER", "main"), start, time.time())))
    return report


def pytest_runtest_logreport(report):
    if report.when != "teardown": return
    for key, value in report.user_properties:
        if key == "cputime": _rows[report.nodeid] = tuple(value)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _rows: return
    rows = sorted(_rows.items(), key=lambda kv: -kv[1][0])
    tr = terminalreporter
    tr.section("CPU seconds per test (user+sys, children included)")
    by_file = {}
    for nodeid, (cpu, wall, *_) in rows:
        f = nodeid.split("::")[0]
        c, w, n = by_file.get(f, (0, 0, 0))
        by_file[f] = (c + cpu, w + wall, n + 1)
    for f, (c, w, n) in sorted(by_file.items(), key=lambda kv: -kv[1][0]):
        tr.write_line(f"{c:8.1f} cpu {w:8.1f} wall  {n:4d} tests  {f}")
    tr.write_line(f"{sum(v[0] for v in _rows.values()):8.1f} cpu {sum(v[1] for v in _rows.values()):8.1f} wall  total")
    t0 = min(v[3] for v in _rows.values())
    for worker in sorted({v[2] for v in _rows.values()}):
        mine = sorted((v for v in _rows.values() if v[2] == worker), key=lambda v: v[3])
        files = []
        for nodeid, v in sorted(_rows.items(), key=lambda kv: kv[1][3]):
            f = nodeid.split("::")[0].split("/")[-1]
            if v[2] == worker and (not files or files[-1] != f): files.append(f)
        tr.write_line(f"{worker}: {len(mine)} tests, {sum(v[0] for v in mine):.1f} cpu s, busy "
                      f"{sum(v[1] for v in mine):.1f} s, last test ended at {mine[-1][4] - t0:.1f} s; "
                      f"files in order: {', '.join(files)}")
    tr.write_line("")
    for nodeid, (cpu, wall, *_) in rows[:60]: tr.write_line(f"{cpu:8.1f} cpu {wall:8.1f} wall  {nodeid}")
    if config.getoption("cpu_json"):
        with open(config.getoption("cpu_json"), "w") as f:
            json.dump({k: dict(zip(("cpu", "wall", "worker", "start", "end"), v)) for k, v in _rows.items()}, f,
                      indent=1)
