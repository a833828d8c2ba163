"""A job that fails in one of two spawned workers while the other is mid-job, as the runner's
workers are set up (runner/jobs.worker_setup): run as a script by test_runner.py."""
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor


def job(index: int) -> int:
    from tqdm import tqdm

    for _ in tqdm(range(3), desc=f"job {index}"):   # a bar, as every stage and run draws
        pass
    if index == 0:
        time.sleep(0.5)
        raise ValueError("the job's one line")
    time.sleep(60)
    return 1


if __name__ == "__main__":
    from dontstop.runner.jobs import worker_setup

    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(2, mp_context=context, initializer=worker_setup) as executor:
            results = [executor.submit(job, index) for index in range(2)]
            try:
                sum(result.result() for result in results)
            except BaseException:   # as runner/jobs._run_workers stops the other worker
                for child in multiprocessing.active_children():
                    child.terminate()
                raise
    except ValueError as e:
        print(f"dontstop: error: {e}", file=sys.stderr)
        sys.exit(2)
