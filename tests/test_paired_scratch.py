"""scripts/paired_scratch.sh on tiny token CSVs: both arms train, a curriculum's first phase trains on its own data
and the second resumes it on the pair's, and a failed arm stops the pair naming its logs."""
import os
import subprocess
from pathlib import Path

from tests.test_gpt_train import TINY, WORDS, random_tokens

ROOT = Path(__file__).resolve().parents[1]


def run_pair(out: Path, train: str, data: Path, env: dict) -> subprocess.CompletedProcess:
    tiny = "trainer.max_steps=6 trainer.val_check_interval=3 validation.num_decode_samples=4"
    command = ["bash", "scripts/paired_scratch.sh", str(out), tiny, f"{tiny} optim.decay_steps=6", "1", train,
               str(data)]
    return subprocess.run(command, cwd=ROOT, env={**os.environ, "CONFIG": TINY, **env}, capture_output=True,
                          text=True, timeout=300)


def test_a_scratch_pair_trains_both_arms_and_a_curriculum_resumes_its_first_phase(tmp_path):
    data = tmp_path / "data"
    (data / "val").mkdir(parents=True)
    random_tokens(data / "val" / "tokens.csv", WORDS[:8], seed=1)
    (data / "charset.txt").write_text("".join(sorted(set("".join(WORDS)))), encoding="utf-8")
    train = random_tokens(tmp_path / "train.csv", WORDS * 2)
    short_words = [word for word in WORDS if len(word) <= 3]
    short = random_tokens(tmp_path / "short.csv", short_words, seed=2)
    out = tmp_path / "pair"
    done = run_pair(out, train, data, {"FIRST_B": short, "FIRST_MINUTES": "0.5"})
    assert done.returncode == 0, done.stderr
    assert not (out / "A.first.log").exists() and f"train {len(WORDS) * 2} rows" in (out / "A.log").read_text()
    assert f"train {len(short_words)} rows" in (out / "B.first.log").read_text()
    second = (out / "B.log").read_text()
    assert f"resuming from {out / 'B' / 'checkpoints' / 'last.ckpt'}" in second
    assert f"train {len(WORDS) * 2} rows" in second
    # the summary: each arm's validations, over every call's metrics file
    assert done.stdout.startswith("A\n") and "\nB\n" in done.stdout
    a_part, b_part = done.stdout[len("A\n"):].split("\nB\n")
    a_steps, b_steps = ([row.split()[0] for row in part.strip().splitlines()[1:]] for part in (a_part, b_part))
    assert a_steps == ["2", "5"] and b_steps[0] == "2"


def test_a_scratch_pair_whose_arm_fails_says_so(tmp_path):
    # PYTHON=false: no gpt.train runs; TRAIN given, so no shard is looked up
    done = run_pair(tmp_path / "pair", "train.csv", tmp_path, {"PYTHON": "false"})
    assert done.returncode != 0 and "an arm failed" in done.stderr and "A*.log" in done.stderr
