"""The test kinds `make test-fast` leaves out are found from what a test reaches."""

import subprocess

import pytest

from tests.conftest import PILOT_NAMES, PROCESS_NAMES, _reaches


def _spawn():
    return subprocess.run(["true"])


def _via_helper():
    return _spawn()


def _pure():
    return 1 + 1


def test_a_process_is_found_through_the_tests_own_helpers_and_pilot_by_run_test():
    assert _reaches(_via_helper, PROCESS_NAMES, set()) and not _reaches(_pure, PROCESS_NAMES, set())

    async def pilot(app):
        async with app.run_test():
            pass

    assert _reaches(pilot, PILOT_NAMES, set()) and not _reaches(pilot, PROCESS_NAMES, set())


@pytest.mark.parametrize("nodeid, marks", [
    ("tests/test_signal_inbox.py::test_a_running_engine_takes_a_signal_from_another_process", {"process"}),
    ("tests/test_tui.py::test_snapshot_screen[1]", {"tui"}),
    ("tests/test_store_faults.py::test_a_locked_database_never_stalls_the_loop_and_the_queue_lands_in_order",
     {"process"}),
    ("tests/test_queue.py::test_ties_go_to_the_first_in", set()),
])
def test_the_kinds_of_some_known_tests(request, nodeid, marks):
    items = {item.nodeid: item for item in request.session.items}
    if nodeid not in items:
        pytest.skip("not collected in this run")
    assert {m.name for m in items[nodeid].iter_markers()} & {"tui", "process"} == marks
