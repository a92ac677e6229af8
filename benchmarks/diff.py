"""Diff time of a 40-paragraph chapter pair: `report-ingest diff`'s comparison and word-level
rendering, against parsing the same two pages (what the crawl spent on them) in the same run.

    .venv/bin/python benchmarks/diff.py [--rounds 50] [--paragraphs 40]

The pair is generated (fixed seed): a State Department chapter of --paragraphs paragraphs of
60-140 words in 8 sections, and its next edition with a tenth of the paragraphs reworded (a
few words each), a tenth removed, a tenth added, a heading reworded and the tier changed.
Diff and parse alternate round by round, so the ratio holds while the machine's load drifts;
the clock is this process's CPU time. Figures in docs/editions.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from devtools.editions import page
from workers.cli.style import Style
from workers.editions.diff import diff_documents, word_diff
from workers.parse import parse_page

HEADINGS = ["PRESCRIBED RECOMMENDATIONS", "PROSECUTION", "PROTECTION", "PREVENTION", "TRAFFICKING PROFILE",
            "LABOR TRAFFICKING", "SEX TRAFFICKING", "CHILD SOLDIERS"]
WORDS = ("government authorities victims trafficking labor forced children women men police courts shelters "
         "prosecuted convicted identified referred services migrant workers fishing agriculture domestic "
         "recruitment debt bondage officials investigations funding hotline training national plan").split()


def paragraph(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(60, 140))]
    return " ".join(words).capitalize() + "."


def chapter_pair(paragraphs: int, seed: int = 24) -> tuple[list, list]:
    rng = random.Random(seed)
    old = [(h, []) for h in ["GHANA: TIER 2", *HEADINGS]]
    for n in range(paragraphs):
        old[n % len(old)][1].append(paragraph(rng))
    new = []
    for heading, paras in old:
        heading = {"GHANA: TIER 2": "GHANA: TIER 2 WATCH LIST", "LABOR TRAFFICKING": "Forced Labor Trafficking"}.get(
            heading, heading)
        changed = []
        for text in paras:
            roll = rng.random()
            if roll < 0.1:
                continue  # removed
            if roll < 0.2:
                words = text.split()
                for i in rng.sample(range(len(words)), 4):
                    words[i] = rng.choice(WORDS)
                text = " ".join(words)
            changed.append(text)
            if rng.random() < 0.1:
                changed.append(paragraph(rng))  # added
        new.append((heading, changed))
    return old, new


def cpu_ms(run) -> float:
    start = time.process_time()
    run()
    return (time.process_time() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--paragraphs", type=int, default=40)
    args = parser.parse_args()
    old_sections, new_sections = chapter_pair(args.paragraphs)
    pages = [page("Ghana", 2023, old_sections).encode(), page("Ghana", 2024, new_sections).encode()]
    urls = ["http://127.0.0.1/editions/ghana-2023.html", "http://127.0.0.1/editions/ghana-2024.html"]
    old, new = (parse_page(body, url, "text/html; charset=utf-8") for body, url in zip(pages, urls, strict=True))
    style = Style(tty=True)

    def diff() -> None:
        for section in diff_documents(old, new):
            for pair in section.changed:
                style.word_diff(word_diff(pair["from"], pair["to"]))

    def parse() -> None:
        for body, url in zip(pages, urls, strict=True):
            parse_page(body, url, "text/html; charset=utf-8")

    sections = diff_documents(old, new)
    counted = {k: sum(len(getattr(s, k)) for s in sections) for k in ("added", "removed", "changed")}
    print(f"pair: {sum(len(p) for _h, p in old_sections)} -> {sum(len(p) for _h, p in new_sections)} paragraphs, "
          f"{len(old['sections'])} -> {len(new['sections'])} sections; found {counted}, "
          f"{sum(s.unchanged for s in sections)} unchanged")
    diffs, parses = [], []
    for _ in range(args.rounds):
        diffs.append(cpu_ms(diff))
        parses.append(cpu_ms(parse))
    d, p = statistics.median(diffs), statistics.median(parses)
    print(f"diff + word-level rendering: median {d:.1f} ms, max {max(diffs):.1f} ms (CPU, {args.rounds} rounds)")
    print(f"parsing both pages:          median {p:.1f} ms")
    print(f"ratio diff / parse: {d / p:.2f}")


if __name__ == "__main__":
    main()
