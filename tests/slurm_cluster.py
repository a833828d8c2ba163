"""A real one-node Slurm cluster on localhost, started and stopped by the tests.

`start_slurm_cluster(workdir)` (or the session fixture `slurm_cluster`) runs the genuine Debian
daemons, nothing faked:

1. munge, Slurm's authentication: the key /etc/munge/munge.key is made if absent (owned by the
   munge user, mode 0400) and munged is started as the munge user if no working one answers on its
   default socket. munged is left running afterwards: it is machine-wide and cheap, and another
   cluster (a second pytest session) may be using it.
2. A private folder /tmp/dontstop-slurm-XXXX holds slurm.conf, the controller's state, slurmd's
   spool and the pid files. It lives under /tmp, not under pytest's tmp_path, on purpose: slurmd
   makes Unix sockets in its spool folder, and a socket path over 108 bytes fails, which a deep
   tmp_path reaches easily. It is deleted on exit.
3. The daemon logs and the job-completion log go to `workdir/logs`, which pytest keeps after the
   run for post-mortems.
4. slurmctld and slurmd run as root, in the foreground (-D) as children of the test process, with
   `-f <conf>` and SLURM_CONF set; the ports are picked free each time, so a stale daemon or a
   system Slurm on 6817/6818 never clashes. Start-up waits (60 s at most) until `sinfo` shows the
   node idle and a warm-up job has run.
5. On exit, leftover jobs are cancelled and both daemons stopped. A cluster whose test process died
   without cleaning up (pytest killed) is found by its owner.pid at the next start, and its
   daemons, job steps and jobs are ended then.

Whatever cannot start raises RuntimeError with the tail of the daemon's log: a test that needs
Slurm fails, it never skips.

There is no slurmdbd (no database), so `sacct` cannot answer: submitit's status calls (which use
sacct) warn and give "UNKNOWN". Job states come instead from slurmctld (`squeue -t all`,
`scontrol show job`, for MinJobAge seconds after a job ends) and, for good, from the job-completion
log (JobCompType=jobcomp/filetxt), which `sacct --completion` reads: see `job_state`.
"""
from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_SOCKET_DIR = Path("/run/munge")
STATE_ROOT = Path("/tmp")  # short on purpose: see the module docstring (Unix socket paths)
PREFIX = "dontstop-slurm-"
START_TIMEOUT_S = 60.0
PARTITION = "debug"
# Job states after which a job will not run again (as `squeue -t all` and sacct spell them).
FINAL_STATES = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY",
                "BOOT_FAIL", "DEADLINE"}


def _sbin(name: str) -> str:
    """Full path of a Slurm/munge program; the daemons live in /usr/sbin, not always on PATH."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
    if path is None:
        raise RuntimeError(f"{name} is not installed: run `bash .ci/system_packages.sh` (as root)")
    return path


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def _free_ports(count: int) -> list[int]:
    """`count` free ports, all bound at once while they are picked, so that no two are the same."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("", 0))
        return [s.getsockname()[1] for s in sockets]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# ----------------------------------------------------------------------------------------- munge

def _munge_works() -> bool:
    """True when a munged answers: a credential made by `munge` is decoded by `unmunge`."""
    try:
        cred = subprocess.run([_sbin("munge"), "-n"], capture_output=True, timeout=10, check=True).stdout
        subprocess.run([_sbin("unmunge")], input=cred, capture_output=True, timeout=10, check=True)
    except (subprocess.SubprocessError, OSError):
        return False
    return True


def ensure_munged() -> None:
    """Make the munge key if absent and start munged as the munge user unless one already works."""
    if _munge_works():
        return
    munge = pwd.getpwnam("munge")
    if not MUNGE_KEY.exists():
        MUNGE_KEY.parent.mkdir(mode=0o700, exist_ok=True)
        os.chown(MUNGE_KEY.parent, munge.pw_uid, munge.pw_gid)
        MUNGE_KEY.write_bytes(os.urandom(1024))
        os.chown(MUNGE_KEY, munge.pw_uid, munge.pw_gid)
        MUNGE_KEY.chmod(0o400)
    # /run is a tmpfs: after a reboot (or in a fresh container) the socket folder is gone, and the
    # Debian package only makes it when systemd starts the service, which never happens here.
    MUNGE_SOCKET_DIR.mkdir(mode=0o755, exist_ok=True)
    os.chown(MUNGE_SOCKET_DIR, munge.pw_uid, munge.pw_gid)
    for folder in (Path("/var/lib/munge"), Path("/var/log/munge")):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chown(folder, munge.pw_uid, munge.pw_gid)
    # A munged killed earlier leaves its pid file and socket behind; munged refuses a socket that is
    # still bound, so only the dead one's leftovers are removed (none of them answered above).
    for leftover in ("munged.pid", "munge.socket.2"):
        (MUNGE_SOCKET_DIR / leftover).unlink(missing_ok=True)
    log = Path("/var/log/munge/munged.log")
    # munged forks into the background itself; the parent returns once the socket is ready.
    result = subprocess.run([_sbin("munged")], user=munge.pw_uid, group=munge.pw_gid, extra_groups=[],
                            capture_output=True, text=True, timeout=30)
    deadline = time.monotonic() + 10
    while not _munge_works():
        if time.monotonic() > deadline:
            raise RuntimeError(f"munged did not start (exit {result.returncode}): {result.stderr.strip()}\n"
                               f"--- {log}:\n{_tail(log)}")
        time.sleep(0.2)


# ----------------------------------------------------------------------------------------- slurm

def _slurm_conf(cluster: "SlurmCluster", ctld_port: int, slurmd_port: int) -> str:
    state = cluster.state_dir
    cpus = os.cpu_count() or 1
    # Half the machine's memory: enough for jobs that ask for a few GB, and never more than the node
    # has (slurmd drains a node whose configured RealMemory exceeds its real one).
    real_memory_mb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20 // 2
    return f"""\
# Written by tests/slurm_cluster.py: a throw-away one-node cluster for the test suite.
ClusterName=dontstop-test
SlurmctldHost={cluster.hostname}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true

# No cgroups in a container: processes are tracked by their parent pids, and tasks are not bound.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# No slurmdbd: no accounting (sacct fails), but every finished job gets a line in the completion
# log, which `sacct --completion` reads.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={cluster.jobcomp_log}

SchedulerType=sched/backfill
# Start a submitted job at once, not at the next 3-second scheduling tick (batch_sched_delay).
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU

# Short timeouts so that the cluster starts, notices, and forgets quickly. A finished job stays
# visible to squeue/scontrol for MinJobAge seconds, then only in the completion log.
ReturnToService=2
SlurmctldTimeout=10
SlurmdTimeout=10
InactiveLimit=0
KillWait=2
MinJobAge=30
WaitTime=0

StateSaveLocation={state / "ctld"}
SlurmdSpoolDir={state / "d"}
SlurmctldPidFile={state / "slurmctld.pid"}
SlurmdPidFile={state / "slurmd.pid"}
SlurmctldLogFile={cluster.log_dir / "slurmctld.log"}
SlurmdLogFile={cluster.log_dir / "slurmd.log"}
SlurmctldDebug=info
SlurmdDebug=info

NodeName={cluster.hostname} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={real_memory_mb} State=UNKNOWN
PartitionName={cluster.partition} Nodes={cluster.hostname} Default=YES MaxTime=INFINITE State=UP
"""


def _processes_of(state_dir: Path) -> list[int]:
    """Pids of a cluster's processes: its daemons (their command line names its slurm.conf), the
    slurmstepd of its jobs and the jobs themselves (their environment has its SLURM_CONF)."""
    conf = str(state_dir / "slurm.conf")
    marker = f"SLURM_CONF={conf}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        if marker in environ or conf in _cmdline(int(proc.name)):
            pids.append(int(proc.name))
    return pids


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _end_stale_clusters() -> None:
    """End what is left of clusters whose test process died without stopping them (pytest killed):
    their daemons, steps and jobs would otherwise run on. Each cluster folder records its owner's
    pid; a folder whose owner is gone is stale."""
    for folder in STATE_ROOT.glob(PREFIX + "*"):
        try:
            owner = int((folder / "owner.pid").read_text())
        except (OSError, ValueError):
            owner = None  # a half-made folder
        if owner is not None and _pid_alive(owner):
            continue  # another live test session's cluster
        _kill_all(_processes_of(folder))
        shutil.rmtree(folder, ignore_errors=True)


class SlurmCluster:
    """One slurmctld and one slurmd on this host; use `start_slurm_cluster` or start()/stop()."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.log_dir = self.workdir / "logs"
        self.jobcomp_log = self.log_dir / "jobcomp.log"
        self.hostname = socket.gethostname().split(".")[0]  # what `hostname -s` says; slurmd matches it
        self.partition = PARTITION
        self.state_dir: Path | None = None
        self.conf_path: Path | None = None
        self.env: dict[str, str] = {}
        self._daemons: dict[str, subprocess.Popen] = {}

    # -- start

    def start(self) -> "SlurmCluster":
        if os.geteuid() != 0:
            raise RuntimeError("the test Slurm cluster runs its daemons as root; run the tests as root")
        slurmctld, slurmd = _sbin("slurmctld"), _sbin("slurmd")
        ensure_munged()
        _end_stale_clusters()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # Job ids start again at 1: an earlier cluster's completion log in this workdir would lie.
        self.jobcomp_log.unlink(missing_ok=True)
        self.state_dir = Path(tempfile.mkdtemp(prefix=PREFIX, dir=STATE_ROOT))
        (self.state_dir / "owner.pid").write_text(str(os.getpid()))
        for sub in ("ctld", "d"):
            (self.state_dir / sub).mkdir()
        self.conf_path = self.state_dir / "slurm.conf"
        self.conf_path.write_text(_slurm_conf(self, *_free_ports(2)))
        self.env = {"SLURM_CONF": str(self.conf_path)}
        env = {**os.environ, **self.env}
        try:
            # -D: stay in the foreground, as our children.
            self._spawn("slurmctld", [slurmctld, "-D", "-f", str(self.conf_path)], env)
            self._spawn("slurmd", [slurmd, "-D", "-f", str(self.conf_path)], env)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        # Early errors (bad conf, port taken) go to stderr before the log file is opened.
        err = open(self.log_dir / f"{name}.stderr", "w")
        self._daemons[name] = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                               start_new_session=True)  # Ctrl-C in pytest is not theirs
        err.close()

    def _failure(self, message: str) -> RuntimeError:
        parts = [message]
        for name in ("slurmctld", "slurmd"):
            # The log file once the daemon has opened it (its stderr repeats it); else its stderr.
            log, stderr = self.log_dir / f"{name}.log", self.log_dir / f"{name}.stderr"
            path = log if log.exists() and log.stat().st_size else stderr
            if path.exists() and path.stat().st_size:
                parts.append(f"--- {path}:\n{_tail(path)}")
        return RuntimeError("\n".join(parts))

    def _wait_ready(self) -> None:
        """Wait until the node is idle, then until a first job has run.

        The warm-up job proves that jobs really launch (slurmstepd, munge credentials), and it waits
        out slurmctld's first scheduling pass, which comes ~3 s after start-up: the tests' jobs then
        start within a second of their submission.
        """
        deadline = time.monotonic() + START_TIMEOUT_S
        last = ""
        while last != "idle":
            self._check_alive(deadline, f"the Slurm node was not idle (sinfo says: {last!r})")
            result = self.run(["sinfo", "-h", "-N", "-n", self.hostname, "-o", "%t"], check=False)
            last = (result.stdout + result.stderr).strip()
        result = self.run(["sbatch", "--parsable", "--job-name", "warm-up", "--output", "/dev/null",
                           "--wrap", "true"], check=False)
        if result.returncode != 0:
            raise self._failure(f"sbatch of the warm-up job failed: {result.stderr.strip()}")
        job_id, state = result.stdout.strip(), "PENDING"
        while state != "COMPLETED":
            self._check_alive(deadline, f"the warm-up job {job_id} did not complete (state {state})")
            state = self.job_state(job_id)
            if state in FINAL_STATES - {"COMPLETED"}:
                raise self._failure(f"the warm-up job {job_id} ended {state}")
            # A job that slurmd cannot launch goes back to PENDING, held: fail now, not in 60 s.
            reason = self.run(["squeue", "-h", "-j", job_id, "-o", "%r"], check=False).stdout.strip()
            if "launch failed" in reason:
                raise self._failure(f"the warm-up job {job_id} could not be launched: {reason}")

    def _check_alive(self, deadline: float, timeout_message: str) -> None:
        for name, proc in self._daemons.items():
            if proc.poll() is not None:
                raise self._failure(f"{name} exited with code {proc.returncode} while starting")
        if time.monotonic() > deadline:
            raise self._failure(f"after {START_TIMEOUT_S:.0f} s, {timeout_message}")
        time.sleep(0.2)

    # -- use

    def run(self, argv: list[str], check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a Slurm client command (sbatch, squeue...) against this cluster."""
        try:
            result = subprocess.run(argv, env={**os.environ, **self.env}, capture_output=True, text=True,
                                    timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{' '.join(argv)} did not answer in {timeout} s") from None
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def job_state(self, job_id: str) -> str:
        """A job's state without sacct: slurmctld's while it remembers the job, else the completion log.

        "PENDING", "RUNNING", "COMPLETED", "CANCELLED", "FAILED"... or "UNKNOWN" if neither knows it.
        """
        result = self.run(["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T"], check=False)
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.split()[0]
        return self.completion_state(job_id) or "UNKNOWN"

    def completion_state(self, job_id: str) -> str | None:
        """The final state in the job-completion log (`sacct --completion`); None until the job ends."""
        result = self.run(["sacct", "--completion", "--noheader", "--allocations", "--parsable2",
                           "--jobs", job_id, "--format", "State"], check=False)
        lines = result.stdout.split("\n")  # one per end of the job (a requeued job ends twice)
        lines = [line for line in lines if line.strip()]
        # "CANCELLED by 0" is a possible spelling: the first word is the state.
        return lines[-1].split()[0] if result.returncode == 0 and lines else None

    def wait_for_state(self, job_id: str, states: set[str], timeout: float = 30) -> str:
        """Poll until the job is in one of `states` (or any final state); returns that state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.job_state(job_id)
            if state in states or state in FINAL_STATES or time.monotonic() > deadline:
                return state
            time.sleep(0.2)

    @contextlib.contextmanager
    def partition_down(self):
        """No job starts inside the block: jobs submitted meanwhile queue (reason PartitionDown) and
        may start once it ends. For a test that must change something between a submission and the
        start of its jobs, whatever the machine's speed."""
        self.run(["scontrol", "update", f"PartitionName={self.partition}", "State=DOWN"])
        try:
            yield
        finally:
            self.run(["scontrol", "update", f"PartitionName={self.partition}", "State=UP"])

    # -- stop

    def stop(self) -> None:
        """Cancel what is left, stop both daemons, delete the state folder (the logs stay)."""
        if self._daemons.get("slurmctld") and self._daemons["slurmctld"].poll() is None:
            self._cancel_all_jobs()
        # slurmd first, so that it does not spend the controller's last seconds reconnecting.
        for name in ("slurmd", "slurmctld"):
            proc = self._daemons.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self.state_dir is not None:
            # Whatever survived (a step that ignored its signals) must not outlive the cluster.
            _kill_all(_processes_of(self.state_dir))
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self.state_dir = None

    def _cancel_all_jobs(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.run(["scancel", "--partition", self.partition], check=False, timeout=10)
            # Wait (briefly) for their processes to be killed: slurmd's steps outlive slurmd otherwise.
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                result = self.run(["squeue", "-h", "-o", "%i"], check=False, timeout=10)
                if result.returncode != 0 or not result.stdout.strip():
                    return
                time.sleep(0.2)

    def __enter__(self) -> "SlurmCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def start_slurm_cluster(workdir: Path):
    """A started SlurmCluster for the `with` block; stopped (jobs cancelled) after it."""
    with SlurmCluster(workdir) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """The session's Slurm cluster; SLURM_CONF is in os.environ while it runs, so `sbatch`, `squeue`
    and submitit's AutoExecutor/SlurmExecutor find it without being told."""
    with start_slurm_cluster(tmp_path_factory.mktemp("slurm")) as cluster:
        saved = {key: os.environ.get(key) for key in cluster.env}
        os.environ.update(cluster.env)
        try:
            yield cluster
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
