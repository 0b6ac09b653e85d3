"""What the bench report scripts share: reading a result directory's files, and how figures are written."""
import json
import statistics


def read_env(path):
    """A `key=value` per line file (machine.env, agent_scale.env, …) as a dict."""
    with open(path) as f:
        return dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)


def jsonl(path):
    """One JSON object per line, blank lines skipped."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def med(rows, key):
    return statistics.median(r[key] for r in rows)


def num(x):
    """Integers with separators; times to 0.1 ms above 10 ms, else as the program printed them."""
    if isinstance(x, float) and abs(x) >= 10:
        return f"{x:,.1f}"
    return f"{x:,}"


def met(ok):
    return "met" if ok else "**not met**"
