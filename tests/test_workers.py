"""A --jobs run's worker processes, one call at a time (suite.run.workers), and the devices
the jobs get (suite.run.parallel): the fast layer's check of what the slow --jobs runs
(test_parallel, reliability/test_faults) exercise through whole suites."""

from __future__ import annotations

import multiprocessing
import operator
import os
import signal
import time

import pytest
import torch

from suite.errors import UsageError
from suite.run import parallel, workers


def _answer(worker: workers.Worker, timeout: float = 60) -> tuple:
    deadline = time.monotonic() + timeout
    while (answer := worker.answer()) is None:
        assert time.monotonic() < deadline, "the worker never answered"
        workers.wait([worker], 1.0)
    return answer


def test_a_worker_answers_says_what_a_call_raised_and_is_named_by_the_signal_that_killed_it():
    worker = workers.Worker(multiprocessing.get_context("spawn"), os.getpid, ())
    try:
        worker.give("sum", operator.add, 2, 3)
        assert _answer(worker) == ("done", 5)
        worker.give("divide", operator.truediv, 1, 0)
        state, error, trace = _answer(worker)
        assert state == "failed" and error.startswith("ZeroDivisionError") and "Traceback" in trace
        worker.give("sleep", time.sleep, 60)
        worker.signal(signal.SIGKILL)
        assert _answer(worker) == ("died", "killed by SIGKILL")
    finally:
        worker.close(timeout=5)
    assert not worker.process.is_alive()


def test_every_cpu_job_gets_the_cpu_and_cuda_jobs_need_a_device_each():
    assert parallel.devices(torch.device("cpu"), 3) == [torch.device("cpu")] * 3
    if torch.cuda.device_count() == 0:
        with pytest.raises(UsageError, match="--jobs 1: only 0 CUDA device"):
            parallel.devices(torch.device("cuda"), 1)
    assert workers.ended(None) == "did not end" and workers.ended(3) == "exited with code 3"
