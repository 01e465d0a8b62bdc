"""The summary line of scripts/run-tests counts real tests (scripts/test-record + test-summary):
every cmocka case, every pytest item, every other CTest entry; nothing that failed or crashed
counts as passed."""
import json
import os
import subprocess

from conftest import SOURCE_DIR

RECORD = SOURCE_DIR / "scripts" / "test-record"
SUMMARY = SOURCE_DIR / "scripts" / "test-summary"

# What cmocka 1.1.5 prints for a group with a pass, a failed assertion, a skip, a caught
# SIGSEGV and a failing per-test setup, then a group whose group setup fails.
CMOCKA_MIXED = """\
[==========] Running 5 test(s).
[ RUN      ] ok
[       OK ] ok
[ RUN      ] bad
[  ERROR   ] --- 0x1 != 0x2
[   LINE   ] --- t.c:9: error: Failure!
[  FAILED  ] bad
[ RUN      ] sk
[  SKIPPED ] sk
[ RUN      ] segv
[  ERROR   ] --- Test failed with exception: Segmentation fault(11)
[  FAILED  ] segv
[ RUN      ] ok
Could not run test: Test setup failed
[  ERROR   ] ok
[==========] 5 test(s) run.
[  PASSED  ] 1 test(s).
[  SKIPPED ] 1 test(s), listed below:
[  SKIPPED ] sk

 1 SKIPPED TEST(S)
[  FAILED  ] 2 test(s), listed below:
[  FAILED  ] bad
[  FAILED  ] segv

 3 FAILED TEST(S)
[==========] Running 1 test(s).
[  FAILED  ] GROUP SETUP
[  ERROR   ] g2
[==========] 0 test(s) run.
[  PASSED  ] 0 test(s).
"""

CMOCKA_PASS = """\
[==========] Running 2 test(s).
[ RUN      ] a
[       OK ] a
[ RUN      ] b
[       OK ] b
[==========] 2 test(s) run.
[  PASSED  ] 2 test(s).
"""

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="1"
failures="2" skipped="3" tests="10" time="1.0"></testsuite></testsuites>"""


def entry(name, kind):
    return {"name": name, "command": ["/bin/sh", str(RECORD), name, kind, "/bin/true"]}


def summarize(base, entries, files, ctest_rc=0, ctest_out=None):
    res = base / "results"
    res.mkdir(parents=True)
    for fname, text in files.items():
        (res / fname).write_text(text)
    listing = base / "ctest.json"
    listing.write_text(json.dumps({"tests": entries}))
    args = ["/usr/bin/python3", str(SUMMARY), str(res), str(listing), str(ctest_rc)]
    if ctest_out is not None:
        (base / "ctest.out").write_text(ctest_out)
        args.append(str(base / "ctest.out"))
    p = subprocess.run(args, capture_output=True, text=True, timeout=30)
    lines = p.stdout.splitlines()
    assert lines and lines[-1].startswith("summary: "), p.stdout + p.stderr
    return p.returncode, lines[-1], lines[:-1]


def test_all_passed(tmp_path):
    rc, line, problems = summarize(
        tmp_path, [entry("unit.a", "cmocka"), entry("e2e", "pytest"), entry("doc", "plain")],
        {"unit.a.log": CMOCKA_PASS, "unit.a.rc": "0\n",
         "e2e.log": "", "e2e.rc": "0\n",
         "e2e.xml": JUNIT.replace('errors="1"', 'errors="0"').replace('failures="2"', 'failures="0"'),
         "doc.log": "", "doc.rc": "0\n"})
    assert (rc, line, problems) == (0, "summary: 10 passed, 0 failed, 3 skipped", [])


def test_cases_failures_errors_and_skips(tmp_path):
    rc, line, problems = summarize(
        tmp_path, [entry("unit.m", "cmocka"), entry("e2e", "pytest"), entry("doc", "plain")],
        {"unit.m.log": CMOCKA_MIXED, "unit.m.rc": "4\n",
         "e2e.log": "", "e2e.rc": "1\n", "e2e.xml": JUNIT,
         "doc.log": "", "doc.rc": "1\n"}, ctest_rc=8)
    # cmocka: 1 passed, 1 skipped, 3 failed in group 1 and the unrun case of group 2;
    # pytest: 10 items, 2 failures + 1 error, 3 skipped; plain: 1 failed
    assert rc == 1
    assert line == "summary: 5 passed, 8 failed, 4 skipped"
    assert problems == ["failed: unit.m: 4 failed, 1 passed (exit status 4)",
                        "failed: e2e: 3 failed, 4 passed (exit status 1)",
                        "failed: doc: 1 failed, 0 passed (exit status 1)"]


def test_crashed_and_killed_executables_never_pass(tmp_path):
    crashed = "\n".join(CMOCKA_PASS.splitlines()[:3]) + "\nAddressSanitizer: heap-use-after-free\n"
    rc, line, problems = summarize(
        tmp_path, [entry("unit.crash", "cmocka"), entry("unit.killed", "cmocka"),
                   entry("unit.leak", "cmocka"), entry("unit.none", "cmocka"),
                   entry("e2e", "pytest")],
        {"unit.crash.log": crashed, "unit.crash.rc": "134\n",
         "unit.killed.log": CMOCKA_PASS,  # all cases passed, but no exit status (timeout)
         "unit.leak.log": CMOCKA_PASS, "unit.leak.rc": "23\n",  # leak report at exit
         "e2e.log": "collecting ...", "e2e.rc": "2\n"})  # no JUnit file
    assert rc == 1
    # crash: 1 passed + the other declared case failed; killed and leak: 2 passed + 1 failed
    # each; never ran: 1 failed; pytest without results: 1 failed
    assert line == "summary: 5 passed, 5 failed, 0 skipped"
    assert problems[0].startswith("failed: unit.crash: 1 failed, 1 passed (a test group did not finish")
    assert "killed" in problems[1] and "exit status 23" in problems[2]
    assert "did not run" in problems[3] and "no pytest result file" in problems[4]


def test_ctest_failure_without_explanation_fails(tmp_path):
    rc, line, _ = summarize(tmp_path / "a", [entry("doc", "plain")], {"doc.log": "", "doc.rc": "0\n"},
                            ctest_rc=8)
    assert (rc, line) == (1, "summary: 1 passed, 1 failed, 0 skipped")
    rc, line, _ = summarize(tmp_path / "b", [], {})
    assert (rc, line) == (1, "summary: 0 passed, 1 failed, 0 skipped")


def test_entries_without_the_recorder_use_ctest_verdict(tmp_path):
    # an add_test that does not go through scripts/test-record: one test, CTest decides
    entries = [{"name": n, "command": ["/usr/bin/true"]} for n in ("a.ok", "a.bad", "a.seg", "a.gone")]
    out = ("    Start 1: a.ok\n1/4 Test #1: a.ok .............   Passed    0.01 sec\n"
           "2/4 Test #2: a.bad ............***Failed    0.02 sec\n"
           "3/4 Test #3: a.seg ............***Exception: SegFault  0.03 sec\n")
    rc, line, problems = summarize(tmp_path, entries, {}, ctest_rc=8, ctest_out=out)
    assert (rc, line) == (1, "summary: 1 passed, 3 failed, 0 skipped")
    assert problems == ["failed: a.bad: 1 failed, 0 passed (CTest: ***Failed)",
                        "failed: a.seg: 1 failed, 0 passed (CTest: ***Exception: SegFault)",
                        "failed: a.gone: 1 failed, 0 passed (CTest: no result)"]


def test_record_keeps_output_and_status(tmp_path):
    env = dict(os.environ, MR_RESULTS_DIR=str(tmp_path))
    env.pop("PYTEST_ADDOPTS", None)  # set for this very run when it runs under run-tests
    script = ("printf '[==========] Running 2 test(s).\\n[ RUN      ] a\\n[       OK ] a\\n'; "
              "kill -SEGV $$")
    p = subprocess.run(["/bin/sh", str(RECORD), "unit.seg", "cmocka", "/bin/sh", "-c", script],
                       env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 128 + 11 and "[       OK ] a" in p.stdout
    assert (tmp_path / "unit.seg.rc").read_text().strip() == "139"
    assert "[       OK ] a" in (tmp_path / "unit.seg.log").read_text()
    # pytest entries get a JUnit file through PYTEST_ADDOPTS
    p = subprocess.run(["/bin/sh", str(RECORD), "py", "pytest", "/bin/sh", "-c",
                        'printf "%s" "$PYTEST_ADDOPTS"'], env=env, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0 and p.stdout.strip() == f"--junitxml={tmp_path}/py.xml"
    # without MR_RESULTS_DIR the command just runs
    env.pop("MR_RESULTS_DIR")
    p = subprocess.run(["/bin/sh", str(RECORD), "x", "plain", "/bin/sh", "-c", "exit 3"], env=env,
                       timeout=30)
    assert p.returncode == 3 and not (tmp_path / "x.rc").exists()
