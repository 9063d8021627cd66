"""controlroom.deferred: work a click causes, run after its commit on another thread."""

import threading

import pytest

from controlroom import deferred


def test_a_failing_job_is_logged_and_the_next_one_still_runs(caplog):
    done = threading.Event()

    def broken():
        raise RuntimeError("boom")

    deferred.submit(broken)
    deferred.submit(done.set)
    assert done.wait(5)
    assert any("deferred job" in r.message for r in caplog.records)


@pytest.mark.django_db(transaction=True)
def test_after_commit_runs_only_when_the_transaction_commits():
    from django.db import transaction

    ran = []
    finished = threading.Event()
    with transaction.atomic():
        deferred.after_commit(ran.append, "committed")
        deferred.after_commit(lambda: finished.set())
    try:
        with transaction.atomic():
            deferred.after_commit(ran.append, "rolled back")
            raise ValueError
    except ValueError:
        pass
    assert finished.wait(5)
    deferred.submit(finished.clear)
    assert ran == ["committed"]
