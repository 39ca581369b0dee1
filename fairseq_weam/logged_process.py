"""Run a long command (fairseq-train) with its full output in a log file and its progress lines
streamed to the console as they come, so an hours-long fine-tune is never silent."""

import os
import subprocess
import sys
from typing import Callable, Sequence

# What fairseq-train prints that a person watching wants to see.
PROGRESS_TAGS = ("| train_inner |", "| valid |", "| train |", "Error", "error:")


def is_progress_line(line: str) -> bool:
    return any(tag in line for tag in PROGRESS_TAGS)


def run_logged(cmd: Sequence[str], log_path: str, show: Callable[[str], bool] = is_progress_line, stream=None) -> int:
    """Run ``cmd``; every output line goes to ``log_path``, the lines ``show`` accepts also to
    ``stream`` (default stdout), flushed at once. Returns the exit status."""
    stream = stream or sys.stdout
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # the child's lines arrive as they are written
    with open(log_path, "w") as log:
        proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        for line in proc.stdout:
            log.write(line)
            if show(line):
                print(line.rstrip(), file=stream, flush=True)
        return proc.wait()
