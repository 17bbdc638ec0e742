"""The native YAML codec against PyYAML: _core.dump_yaml is byte-identical to
yaml.safe_dump(default_flow_style=False) and _core.parse_yaml reads what yaml.safe_load
reads, on a deterministic random corpus of tricky scalars and nested structures."""

import math
import random

import pytest
import yaml

from pyfunc import _core

ATOMS = [
    "", " ", "a", "yes", "No", "null", "~", "1", "1.5", "1e5", ".5", "0x1F", "0o7", "012", "1_000", "1:20",
    "2023-01-01", "2023-12-07 02:46:07.555576", "-", "- a", "a: b", "a:b", "#x", "a #b", "'q'", '"d"', "é",
    "日本", "tab\there", "line\nbreak", "trailing ", " leading", "---", "...", "=", "<<", "@at", "%p", "!bang",
    "&amp", "*star", "?", "? x", "[x]", "{y}", "a,b", "x\\y", "true", "FALSE", "on", "off", ".inf", "-.inf",
    ".nan", "+1", "-0", "0", "3.", "1.0e+5", "\x85", "\u2028", "\ufeff", "\x00z", "\x7f", "😀", "nul\x00", "cr\r",
    "two\n\nlines", "end\n", "x" * 130, ("word " * 40).strip(),
    '[{"type": "double", "name": "sepal length (cm)", "required": true}, '
    '{"type": "double", "name": "sepal width (cm)", "required": true}]',
]
FLOATS = [0.0, -0.0, 1.5, 1e16, 1e15, 1e-5, 1e-4, 123456.789, float("inf"), -float("inf"), 1 / 3, 2.5e-300, 1e300]


def random_value(rng, depth=0):
    r = rng.random()
    if depth > 3 or r < 0.5:
        c = rng.random()
        if c < 0.55:
            if rng.random() < 0.7:
                return rng.choice(ATOMS)
            return "".join(rng.choice(ATOMS) for _ in range(rng.randint(1, 6)))
        if c < 0.65:
            return rng.randint(-10**12, 10**12)
        if c < 0.8:
            return rng.choice(FLOATS + [rng.random() * 10 ** rng.randint(-8, 20)])
        if c < 0.9:
            return rng.choice([True, False, None])
        return rng.choice([[], {}])
    if r < 0.75:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(1, 4))]
    return {
        (rng.choice(ATOMS) if rng.random() < 0.5 else "k%d" % rng.randint(0, 99)): random_value(rng, depth + 1)
        for _ in range(rng.randint(1, 5))
    }


def corpus(seed, n):
    rng = random.Random(seed)
    return [({"k": random_value(rng)} if rng.random() < 0.7 else random_value(rng)) for _ in range(n)]


def normalized(x):
    """NaN compares equal to itself; everything else as is."""
    if isinstance(x, float) and math.isnan(x):
        return "NaN"
    if isinstance(x, dict):
        return {k: normalized(v) for k, v in x.items()}
    if isinstance(x, list):
        return [normalized(v) for v in x]
    return x


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_dump_yaml_is_byte_identical_to_safe_dump(seed):
    checked = 0
    for value in corpus(seed, 600):
        for sort_keys in (True, False):
            try:
                want = yaml.safe_dump(value, default_flow_style=False, sort_keys=sort_keys)
            except yaml.YAMLError:
                continue
            assert _core.dump_yaml(value, sort_keys=sort_keys) == want, repr(value)[:300]
            checked += 1
    assert checked > 1000


@pytest.mark.parametrize("seed", [4, 5])
def test_parse_yaml_reads_what_safe_load_reads(seed):
    for value in corpus(seed, 600):
        for flow in (False, True):
            text = yaml.safe_dump(value, default_flow_style=flow)
            assert normalized(_core.parse_yaml(text)) == normalized(yaml.safe_load(text)), text[:300]


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb:\n  - x\n  - y\n",  # indented sequences (prettier-formatted files)
        "a: 'it''s'\nb: \"esc\\ttab\\u00e9\"\n",
        "a: >\n  folded\n  text\nb: |\n  literal\n  text\n",
        "a: {x: 1, y: [1, 2]}\n",
        "a: 0o17\nb: 0x1f\nc: 1_000\nd: +.5\ne: -.inf\nf: NULL\ng: Off\n",
        "# comment\n---\na: b  # trailing\n...\n",
        "signature:\n  inputs: '[{\"type\": \"double\", \"name\": \"x\", \"required\": true}, {\"type\":\n    \"double\"}]'\n",
    ],
)
def test_parse_yaml_hand_written_forms(text):
    assert normalized(_core.parse_yaml(text)) == normalized(yaml.safe_load(text))
