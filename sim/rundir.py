"""A run directory's records: run.json (what made the run), metrics.json, and finalizing.

* :func:`run_record` gathers what a run was made with: normsim's version and git commit,
  Python and library versions, the command line, and per LLM group the model, its
  device and dtype and a hash of its files.
* :func:`write_metrics` computes the environment's metrics from the tables and writes
  metrics.json (valid JSON: no NaN or infinity).
* :func:`finalize` turns a killed run's journals into the usual tables and metrics with
  ``status: killed`` (``normsim finalize``; ``normsim report`` and ``load_run`` do it too).
* :func:`check_models` says, without loading anything, whether each LLM group's model
  can be found locally and whether it would need ``trust_remote_code``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Collection
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from sim.config import Scenario, load_scenario
from sim.core.metrics import presentation_metrics
from sim.core.schema import ConfigError
from sim.logger import convert_journals, has_journals, read_table

LIBRARIES = ("numpy", "pandas", "pyarrow", "pydantic", "mesa", "torch", "transformers", "ray")
REPO = Path(__file__).resolve().parents[1]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    """The checkout's commit (with ``-dirty`` when files changed), or None outside a git checkout."""
    if not (REPO / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "")


# --------------------------------------------------------------------------- models
def _is_local_engine(policy: Any) -> bool:
    # Other engines (vLLM, an OpenAI-compatible server) name models this machine need not hold.
    return policy.type == "llm" and policy.engine == "hf"


def model_dir(name: str) -> Path | None:
    """The folder of a model's files if it is available locally (nothing is loaded or converted).

    The built-in test model has no files: its folder is None, and so is a model that cannot be found.
    """
    from agents.llm import loading  # torch comes with it: only scenarios with LLM groups pay for it

    if name == loading.TINY_MODEL:
        return None
    if name in loading.EMBEDDED:
        cached = loading.embedded_cache_dir(name)
        if (cached / "config.json").exists():
            return cached
        return loading.package_dir(name)  # raises ModelNotAvailable with the pip command
    path = Path(name).expanduser()
    if path.exists():
        return path
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name, "config.json")
    except Exception:  # noqa: BLE001  (an id the hub library refuses is simply not cached)
        return None
    return Path(found).parent if isinstance(found, str) else None


def check_models(scenario: Scenario, skip: Collection[str] = ()) -> None:
    """Raise one ConfigError line for the first LLM group (not in ``skip``) whose model cannot run here."""
    for i, group in enumerate(scenario.population):
        policy = group.policy
        if group.name in skip or not _is_local_engine(policy):
            continue
        from agents.llm import loading  # torch: only for scenarios with LLM groups

        if policy.model == loading.TINY_MODEL:
            continue
        field = f"population[{i}].policy.model"
        try:
            folder = model_dir(policy.model)
        except loading.ModelNotAvailable as err:
            raise ConfigError(f"{field}: {' '.join(str(err).split())}") from None
        if folder is None:
            raise ConfigError(
                f"{field}: model '{policy.model}' is not a local checkpoint and not in the Hugging Face cache; "
                f"nothing is downloaded at run time: fetch it once with `hf download {policy.model}` or give a "
                f"local path; built in: {', '.join([*loading.EMBEDDED, loading.TINY_MODEL])}"
            )
        config = folder / "config.json"
        needs_code = config.exists() and "auto_map" in _read_json(config)
        if needs_code and not policy.trust_remote_code:
            raise ConfigError(
                f"{field}: model '{policy.model}' ships its own Python code (auto_map in config.json) and runs only "
                "with trust_remote_code: true, which executes that code on this machine"
            )
        if policy.model not in loading.EMBEDDED and not needs_code:  # its own code is not run to check it
            _check_loadable(folder, field, policy.model)
    check_memory(scenario, skip)


def _check_loadable(folder: Path, field: str, model: str) -> None:
    """Load what ``run`` loads first, cheaply: config.json and the tokenizer (no weights)."""
    if not folder.is_dir():
        raise ConfigError(f"{field}: model '{model}' is a file; expected a model folder (config.json, weights)")
    config = folder / "config.json"
    if not config.is_file():
        raise ConfigError(f"{field}: model folder {folder} has no config.json; is it a Hugging Face checkpoint?")
    if not _read_json(config):
        raise ConfigError(f"{field}: {config} is not a JSON object; the checkpoint is damaged")
    from transformers import AutoConfig, AutoTokenizer  # with torch: only scenarios with LLM groups

    for what, loader in (("config", AutoConfig), ("tokenizer", AutoTokenizer)):
        try:
            loaded = loader.from_pretrained(str(folder), local_files_only=True)
        except Exception as exc:  # noqa: BLE001  (whatever transformers raises, run would fail the same way)
            reason = " ".join(str(exc).split())[:300]
            raise ConfigError(f"{field}: model '{model}': its {what} does not load: {reason}") from None
        if what == "tokenizer" and len(loaded) < 2:  # transformers builds an empty one from a config alone
            raise ConfigError(f"{field}: model '{model}': its tokenizer does not load: no vocabulary in {folder}")
    if not any(p.suffix in WEIGHTS for p in folder.iterdir()):
        raise ConfigError(f"{field}: model folder {folder} holds no weights ({', '.join('*' + w for w in WEIGHTS)})")


WEIGHTS = (".safetensors", ".bin", ".gguf")

# Measured: a scripted commons society of 100,000 agents after one step (its event and
# agent rows included) holds ~4.7 KB per agent; the interpreter and libraries ~200 MB.
BYTES_PER_AGENT = 6_000
BASE_BYTES = 300 * 2**20


def machine_memory() -> int | None:
    """This machine's physical memory in bytes (None where the platform does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def memory_estimate(scenario: Scenario, skip: Collection[str] = ()) -> tuple[int, int]:
    """(bytes for the agents, bytes of local model weights) a run of ``scenario`` needs, roughly."""
    weights, seen = 0, set()
    for group in scenario.population:
        policy = group.policy
        if group.name in skip or not _is_local_engine(policy) or policy.model in seen:
            continue
        seen.add(policy.model)  # groups naming one model share its weights
        try:
            folder = model_dir(policy.model)
        except Exception:  # noqa: BLE001  (check_models names a model that cannot be found)
            folder = None
        if folder is not None and folder.is_dir():
            weights += sum(p.stat().st_size for p in folder.glob("*") if p.suffix in WEIGHTS)
    return BASE_BYTES + scenario.n_agents * BYTES_PER_AGENT, weights


def check_memory(scenario: Scenario, skip: Collection[str] = ()) -> None:
    """Refuse, with the numbers, a run whose estimated memory exceeds this machine's."""
    total = machine_memory()
    if total is None:
        return
    agents, weights = memory_estimate(scenario, skip)
    if agents + weights > total:
        gib = 2**30
        raise ConfigError(
            f"population: {scenario.n_agents:,} agents need about {agents / gib:.1f} GiB"
            + (f" and the models' weights {weights / gib:.1f} GiB" if weights else "")
            + f", more than this machine's {total / gib:.1f} GiB; use fewer agents"
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


_HASHES: dict[tuple[str, int, float], str] = {}


def files_hash(folder: Path) -> str:
    """sha256 over the folder's files (names and contents), cached per process by size and mtime."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    stamp = (
        str(folder.resolve()),
        sum(p.stat().st_size for p in files),
        max((p.stat().st_mtime for p in files), default=0),
    )
    if stamp not in _HASHES:
        total = hashlib.sha256()
        for path in files:
            total.update(str(path.relative_to(folder)).encode() + b"\0")
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    total.update(chunk)
        _HASHES[stamp] = total.hexdigest()
    return _HASHES[stamp]


def _model_entry(group: Any, policy_obj: Any) -> dict[str, Any]:
    cfg = group.policy
    entry: dict[str, Any] = {"group": group.name, "model": cfg.model, "dtype": cfg.dtype, "device": cfg.device}
    backend = getattr(policy_obj, "backend", None)
    for key in ("device", "dtype"):  # what the loaded model really runs on
        if getattr(backend, key, None) is not None:
            entry[key] = str(getattr(backend, key)).removeprefix("torch.")
    entry["trust_remote_code"] = bool(getattr(cfg, "trust_remote_code", False))
    describe = getattr(policy_obj, "describe", None)
    if callable(describe):  # the attention path the engine chose (shared prefix, or a fallback and why)
        try:
            entry["engine"] = describe()
        except Exception:  # noqa: BLE001  (the record must never stop a run that got this far)
            entry["engine"] = None
    if _is_local_engine(cfg):
        try:
            folder = model_dir(cfg.model)
        except Exception:  # noqa: BLE001  (the record must never stop a run that got this far)
            folder = None
        entry["files"] = str(folder) if folder else None
        entry["sha256"] = files_hash(folder) if folder and folder.is_dir() else None
    return entry


def run_record(scenario: Scenario, policies: dict[str, Any], started: str, argv: list[str] | None = None) -> dict:
    """Everything run.json holds at the start of a run (``ended`` and ``status`` come at its end)."""
    return {
        "run_id": None,
        "name": scenario.name,
        "seed": scenario.run.seed,
        "normsim": _version("normsim"),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "command": list(sys.argv if argv is None else argv),
        "host": platform.node(),
        "pid": os.getpid(),
        "models": [_model_entry(g, policies.get(g.name)) for g in scenario.population if g.policy.type == "llm"],
        "started": started,
        "ended": None,
        "status": "running",
    }


# -------------------------------------------------------------------------- metrics
def finite_json(value: Any) -> Any:
    """NaN and infinity are not JSON: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        return finite_json(value.item())
    return value


def compute_metrics(run_dir: Path, scenario: Scenario, status: str, seconds: float | None) -> dict[str, Any]:
    events, steps = read_table(run_dir, "events"), read_table(run_dir, "steps")
    found = scenario.spec.metrics(events, steps, scenario) if len(steps) else {}
    # every environment's LLM decisions, officials' included (agents.presentation)
    found.update(presentation_metrics(events) if len(steps) else {})
    metrics = {"status": status, "steps_completed": int(len(steps))}
    if seconds is not None:
        metrics["wall_seconds"] = round(seconds, 3)
    return finite_json({**metrics, **found})


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(finite_json(data), indent=2, allow_nan=False), encoding="utf-8")
    tmp.replace(path)


def is_running(run_dir: Path) -> bool:
    """Whether the process that writes this run (per run.json) is alive on this machine."""
    record = _read_json(run_dir / "run.json")
    pid = record.get("pid")
    if record.get("status") != "running" or record.get("host") != platform.node() or not isinstance(pid, int):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, owned by someone else
        return True
    return True


def finalize(run_dir: str | Path) -> dict[str, Any] | None:
    """Turn a killed run's journals into Parquet tables and metrics.json (``status: killed``).

    Returns the metrics written, or None when there was nothing to finalize (a finished run).
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise ConfigError(f"{run_dir}: not a run directory (no config.yaml)")
    if not has_journals(run_dir):
        return None
    if is_running(run_dir):
        raise ConfigError(f"{run_dir}: the run is still going (process {_read_json(run_dir / 'run.json')['pid']})")
    scenario = load_scenario(run_dir / "config.yaml")
    dropped = convert_journals(run_dir)
    metrics_path = run_dir / "metrics.json"
    old = _read_json(metrics_path)
    status = old.get("status") if old.get("status") in ("failed", "interrupted") else "killed"
    metrics = compute_metrics(run_dir, scenario, status, None)
    if dropped or old.get("rows_dropped"):  # rows of a step cut short: never half a step in the tables
        metrics["rows_dropped"] = dropped + int(old.get("rows_dropped") or 0)
    write_json(metrics_path, metrics)
    record_path = run_dir / "run.json"
    if record_path.exists():
        record = _read_json(record_path)
        write_json(record_path, {**record, "status": status, "finalized": now()})
    return metrics
