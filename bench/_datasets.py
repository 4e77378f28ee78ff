"""The two dev sets as (drafts, queries, judgements), and their metrics.

Shared by ``quality_*.py`` and ``generalise.py`` so every script loads the data the same
way (protocol in ../shared/data/README.md and docs/benchmarks.md):

- LoCoMo dev: every turn is a memory ``Speaker: text`` created at its session's time plus
  its index in seconds, source ``chat``, tagged with its conversation; each question of
  categories 1-4 with evidence is searched as ``tag:<conversation> question``.
- SciFact train: every abstract is a memory ``title\\n\\ntext``; each judged claim is searched
  over the whole corpus.

Double quotes in a question or claim are dropped (the query syntax reads them as a phrase).
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ephemera_tui.engine import Draft

LOCOMO_CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
SCIFACT_BASE_TIME = 1_600_000_000


@dataclass(frozen=True)
class Query:
    """One judged query: the raw search string and the relevant documents (doc key -> grade)."""

    raw: str
    relevant: dict[str, int]
    category: int = 0


@dataclass
class Dataset:
    """Documents to import (each with a stable key) and the judged queries."""

    name: str
    docs: list[tuple[str, Draft]]
    queries: list[Query]
    groups: dict[str, list[int]] = field(default_factory=dict)  # e.g. conversation -> doc idx


def session_time(value: str) -> int:
    """``1:56 pm on 8 May, 2023`` -> Unix seconds (read as UTC)."""
    moment = datetime.strptime(value.strip(), "%I:%M %p on %d %B, %Y")
    return int(moment.replace(tzinfo=UTC).timestamp())


def load_conversation(
    path: Path,
) -> tuple[str, list[tuple[str, Draft]], list[dict[str, Any]]]:
    """(conversation id, [(dia_id, draft)], questions) of one LoCoMo file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    conv = data.get("conversation", data)
    name = path.stem
    turns: list[tuple[str, Draft]] = []
    sessions = sorted(
        (int(m.group(1)), key)
        for key in conv
        if (m := re.fullmatch(r"session_(\d+)", key)) and isinstance(conv[key], list)
    )
    for _number, key in sessions:
        start = session_time(conv[f"{key}_date_time"])
        for index, turn in enumerate(conv[key]):
            draft = Draft(
                content=f"{turn['speaker']}: {turn['text']}",
                created_at=start + index,
                source="chat",
                tags=(name,),
            )
            turns.append((turn["dia_id"], draft))
    questions = []
    for qa in data["qa"]:
        if qa.get("category") not in LOCOMO_CATEGORIES:
            continue
        evidence = [e.strip() for item in qa.get("evidence", []) for e in re.split(r"[;,]", item)]
        evidence = [e for e in evidence if e]
        if not evidence:
            continue
        questions.append(
            {"question": qa["question"], "category": qa["category"], "evidence": evidence}
        )
    return name, turns, questions


def load_locomo(data_dir: Path) -> Dataset:
    """LoCoMo dev; doc keys are ``conv:dia_id``."""
    files = sorted((data_dir / "locomo-dev").glob("conv-*.json"))
    if not files:
        raise FileNotFoundError(f"no LoCoMo files in {data_dir / 'locomo-dev'}")
    docs: list[tuple[str, Draft]] = []
    queries: list[Query] = []
    groups: dict[str, list[int]] = {}
    for path in files:
        name, turns, questions = load_conversation(path)
        groups[name] = list(range(len(docs), len(docs) + len(turns)))
        docs += [(f"{name}:{dia}", draft) for dia, draft in turns]
        for qa in questions:
            text = qa["question"].replace('"', " ")
            relevant = {f"{name}:{e}": 1 for e in qa["evidence"]}
            queries.append(Query(f"tag:{name} {text}", relevant, qa["category"]))
    return Dataset("locomo", docs, queries, groups)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_scifact(data_dir: Path, limit: int = 0) -> Dataset:
    """SciFact train; doc keys are the corpus ``_id``s (binary relevance)."""
    folder = data_dir / "scifact-train"
    if not (folder / "corpus.jsonl").exists():
        raise FileNotFoundError(f"no SciFact data in {folder}")
    corpus = read_jsonl(folder / "corpus.jsonl")
    texts = {q["_id"]: q["text"] for q in read_jsonl(folder / "queries.jsonl")}
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with (folder / "qrels" / "train.tsv").open(encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            qid, doc, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                qrels[qid][doc] = int(score)
    docs = [
        (
            str(d["_id"]),
            Draft(
                content=f"{d['title']}\n\n{d['text']}".strip(),
                created_at=SCIFACT_BASE_TIME + n,
                source="scifact",
            ),
        )
        for n, d in enumerate(corpus)
    ]
    judged = [qid for qid in texts if qid in qrels]
    if limit:
        judged = judged[:limit]
    queries = [Query(texts[qid].replace('"', " "), dict(qrels[qid])) for qid in judged]
    return Dataset("scifact", docs, queries)


def recall_at(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    return len(set(ranked[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def ndcg_at(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(rel / math.log2(i + 2) for i, rel in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def figures(name: str, rankings: list[list[str]], queries: list[Query]) -> dict[str, float]:
    """The dataset's headline metrics for one ranking per query."""
    n = len(queries)
    pairs = list(zip(rankings, queries, strict=True))
    if name == "locomo":
        return {
            f"R@{k}": sum(recall_at(r, q.relevant, k) for r, q in pairs) / n for k in (1, 5, 10, 20)
        }
    return {
        "nDCG@10": sum(ndcg_at(r, q.relevant, 10) for r, q in pairs) / n,
        "R@10": sum(recall_at(r, q.relevant, 10) for r, q in pairs) / n,
        "R@100": sum(recall_at(r, q.relevant, 100) for r, q in pairs) / n,
    }
