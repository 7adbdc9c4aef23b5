"""A pytest plugin that reports the CPU seconds (user + sys, of pytest and the child processes it waited for) of each
test, setup and teardown included: on a shared machine the wall times of `--durations` grow with other people's
load, CPU seconds much less.

    PYTHONPATH=.:bench pytest tests/ -p pytest_cputime --durations=0 [--cpu-json out.json]"""
import json
import resource
import time

import pytest

_rows = {}


def _cpu():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def pytest_addoption(parser):
    parser.addoption("--cpu-json", default=None, help="write each test's CPU and wall seconds here")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    cpu0, wall0 = _cpu(), time.perf_counter()
    try: return (yield)
    finally: _rows[item.nodeid] = (_cpu() - cpu0, time.perf_counter() - wall0)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    rows = sorted(_rows.items(), key=lambda kv: -kv[1][0])
    tr = terminalreporter
    tr.section("CPU seconds per test (user+sys, children included)")
    by_file = {}
    for nodeid, (cpu, wall) in rows:
        f = nodeid.split("::")[0]
        c, w, n = by_file.get(f, (0, 0, 0))
        by_file[f] = (c + cpu, w + wall, n + 1)
    for f, (c, w, n) in sorted(by_file.items(), key=lambda kv: -kv[1][0]):
        tr.write_line(f"{c:8.1f} cpu {w:8.1f} wall  {n:4d} tests  {f}")
    tr.write_line(f"{sum(v[0] for v in _rows.values()):8.1f} cpu {sum(v[1] for v in _rows.values()):8.1f} wall  total")
    tr.write_line("")
    for nodeid, (cpu, wall) in rows[:60]: tr.write_line(f"{cpu:8.1f} cpu {wall:8.1f} wall  {nodeid}")
    if config.getoption("cpu_json"):
        with open(config.getoption("cpu_json"), "w") as f: json.dump(_rows, f, indent=1)
