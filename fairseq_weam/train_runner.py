"""The one way the package runs ``fairseq-train``: build the command line, run it in a subprocess
with every output line in a log file (and the progress lines streamed to the console as they come,
so an hours-long fine-tune is never silent), and hand back the log, its json records and the
checkpoints. Used by the imbalance sweep, the XNLI fine-tune, the demo and the tests.

Also the one definition of the small models the package trains on a CPU: :data:`TINY_MODEL`
(the sweep's per-run model and the packaged ``weam_tiny`` hydra config, tested equal) and
:data:`DEMO_MODEL` (the demo's single run: the same model, deeper and wider).
"""

import glob
import json
import os
import shlex
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence

from fairseq_weam.core.errors import WeamError

FAIRSEQ_TRAIN = os.path.join(os.path.dirname(sys.executable), "fairseq-train")
USER_DIR = os.path.dirname(os.path.abspath(__file__))

# fairseq-train flags as {dest: value}: the architecture, plus the task's sample length (the
# model's positions follow it). dropout 0.1 is roberta's default, spelled out for the yaml.
TINY_MODEL: Dict[str, object] = {
    "arch": "roberta",
    "encoder_layers": 2,
    "encoder_embed_dim": 128,
    "encoder_ffn_embed_dim": 256,
    "encoder_attention_heads": 4,
    "tokens_per_sample": 128,
    "dropout": 0.1,
}
# The demo trains one run, not a grid of them: twice the layers, a 4x FFN.
DEMO_MODEL: Dict[str, object] = {**TINY_MODEL, "encoder_layers": 4, "encoder_ffn_embed_dim": 512}

# The environment variables that set a training subprocess's CPU threads: torch sizes its intra-op
# pool from OMP_NUM_THREADS at start-up, capped at the machine's cores (the criterion logs the
# result: "torch CPU threads: N"); MKL and OpenBLAS size theirs from their own.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads(parallel_runs: int = 1) -> int:
    """torch CPU threads per run when ``parallel_runs`` runs share this machine: ``$OMP_NUM_THREADS``
    when it is set (the caller already chose), else the available cores // ``parallel_runs`` (at
    least 1). More threads than cores per run only make the runs wait on each other."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return max(1, available_cores() // max(1, parallel_runs))


def thread_env(threads: Optional[int], env: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """``env`` (default: this process's) with :data:`THREAD_VARIABLES` set to ``threads``
    (unchanged for None or 0)."""
    out = dict(os.environ if env is None else env)
    if threads:
        out.update({name: str(int(threads)) for name in THREAD_VARIABLES})
    return out


# What fairseq-train prints that a person watching wants to see.
PROGRESS_TAGS = ("| train_inner |", "| valid |", "| train |", "Error", "error:")

# Seen rarely under heavy load: after training, validation and saving had all finished, a C++
# std::thread was destroyed while joinable during interpreter shutdown (SIGABRT). Nothing the run
# produced is affected, so it counts as the success it was.
EXIT_ABORT = "terminate called without an active exception"


class TrainError(WeamError, RuntimeError):
    """fairseq-train exited with an error; the message ends with the tail of its log."""


def flags(settings: Mapping[str, object]) -> List[str]:
    """``{"encoder_layers": 2, "cpu": True}`` -> ``["--encoder-layers", "2", "--cpu"]``."""
    out = []
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            out.append(flag)
        elif value is not False and value is not None:
            out += [flag, str(value)]
    return out


def train_command(data: str, *args, task: str = "weam", criterion: str = "weam", user_dir: str = USER_DIR) -> List[str]:
    """``fairseq-train DATA --user-dir fairseq_weam --task TASK --criterion CRITERION ARGS...``."""
    return [FAIRSEQ_TRAIN, str(data), "--user-dir", user_dir, "--task", task, "--criterion", criterion, *map(str, args)]


def is_progress_line(line: str) -> bool:
    return any(tag in line for tag in PROGRESS_TAGS)


def never(line: str) -> bool:
    return False


def shutdown_abort(returncode: int, output: str) -> bool:
    return returncode == -6 and EXIT_ABORT in output and "done training" in output


def json_records(text: str) -> List[dict]:
    """The json log lines fairseq prints (``--log-format json``), each with its tag
    (``train_inner``, ``valid``, ``train``) under ``_tag``."""
    records = []
    for line in text.splitlines():
        start = line.find("{")
        if start < 0 or "| INFO |" not in line:
            continue
        try:
            rec = json.loads(line[start:])
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            rec["_tag"] = line[:start].split("|")[-2].strip() if line.count("|") >= 3 else ""
            records.append(rec)
    return records


@dataclass
class TrainRun:
    command: List[str]
    returncode: int
    output: str  # stdout and stderr, interleaved as printed
    log_path: Optional[str] = None
    save_dir: Optional[str] = None

    @property
    def records(self) -> List[dict]:
        return json_records(self.output)

    def tail(self, n: int = 20) -> str:
        return "".join(self.output.splitlines(keepends=True)[-n:])

    @property
    def checkpoints(self) -> List[str]:
        return sorted(glob.glob(os.path.join(self.save_dir, "*.pt"))) if self.save_dir else []

    def checkpoint(self, name: str = "checkpoint_last.pt") -> str:
        return os.path.join(self.save_dir, name)


def _save_dir(cmd: Sequence[str]) -> Optional[str]:
    cmd = list(cmd)
    return cmd[cmd.index("--save-dir") + 1] if "--save-dir" in cmd[:-1] else None


def run_train(
    cmd: Sequence[str],
    log_path: Optional[str] = None,
    show: Callable[[str], bool] = is_progress_line,
    stream=None,
    env: Optional[Mapping[str, str]] = None,
    cwd: Optional[str] = None,
    timeout: Optional[float] = None,
    append: bool = False,
    check: bool = True,
    what: str = "fairseq-train",
    threads: Optional[int] = None,
) -> TrainRun:
    """Run ``cmd`` (usually :func:`train_command`'s); every output line goes to ``log_path``
    (appended with ``append``, after a ``# COMMAND`` line) and the lines ``show`` accepts also to
    ``stream`` (default stdout), flushed at once. ``timeout``: seconds before the run is killed.
    ``threads``: the run's torch CPU threads, through :data:`THREAD_VARIABLES` in its environment
    (None or 0: inherited). With ``check``, a failed run raises :class:`TrainError` naming
    ``what`` and the log."""
    stream = stream or sys.stdout
    env = dict(thread_env(threads, env), PYTHONUNBUFFERED="1")  # lines arrive as written
    lines = []
    # Line-buffered: someone following the log (tail -f) sees each line as the run prints it.
    log = open(log_path, "a" if append else "w", buffering=1, encoding="utf-8") if log_path else None
    try:
        if log:
            prefix = f"{THREAD_VARIABLES[0]}={env[THREAD_VARIABLES[0]]} " if threads else ""
            log.write("# " + prefix + shlex.join(map(str, cmd)) + "\n")
            log.flush()
        proc = subprocess.Popen(
            list(map(str, cmd)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd
        )
        timer = threading.Timer(timeout, proc.kill) if timeout else None
        if timer:
            timer.start()
        try:
            for line in proc.stdout:
                lines.append(line)
                if log:
                    log.write(line)
                if show(line):
                    print(line.rstrip(), file=stream, flush=True)
            returncode = proc.wait()
        finally:
            if timer:
                timer.cancel()
    finally:
        if log:
            log.close()
    run = TrainRun(list(map(str, cmd)), returncode, "".join(lines), log_path, _save_dir(cmd))
    if shutdown_abort(returncode, run.output):
        run.returncode = 0
    if check and run.returncode != 0:
        where = f"; full log: {log_path}" if log_path else ""
        raise TrainError(f"{what}: fairseq-train failed (exit {returncode}){where}\n{run.tail(15)}")
    return run
