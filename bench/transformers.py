"""Transformers causal LMs: igkit against Captum's ``LLMGradientAttribution`` at equal accuracy.

    python -m bench.transformers --models ptb-gpt2 --tokens 100 --threads 1
    python -m bench.transformers --models gpt2-124m --tokens 512,2048 --threads 1 --cap-gib 12

For each model and context length, one fresh process per tool (so one run's peak memory cannot
hide another's, and a run that passes ``--cap-gib`` fails alone) explains the model's predicted
next token of a Penn Treebank context, from the end-of-text token's embedding as the baseline,
to a **trusted answer**: completeness error at most 1% (Σ attributions vs
log p(x) − log p(baseline)). igkit integrates adaptively in passes sized by ``--max-memory``;
Captum (``LayerIntegratedGradients`` on the token embeddings inside ``LLMGradientAttribution``,
Gauss–Legendre, its defaults otherwise) has no such check, so its user doubles ``n_steps`` from 8
until the error is within 1%: the seconds of all those runs are its time to a trusted answer.
Models: ``ptb-gpt2`` (shipped, 0.94 M parameters, 128 positions) and ``gpt2-124m`` (GPT-2 small's
configuration, randomly initialised with seed 0, positions widened to the longest context).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TRUSTED = 0.01
CAPTUM_STEPS = (8, 16, 32, 64, 128, 256)
PTB_VALID = REPO.parent / "shared" / "data" / "ptb" / "ptb.valid.txt"


def load(name: str, tokens: int) -> Any:
    """The model as igkit's :class:`CausalLM` (the same object both tools use)."""
    import torch

    from igkit.plugins.text.hf_model import causal_lm, load_causal_lm

    if name == "ptb-gpt2":
        return load_causal_lm("ptb-gpt2")
    from transformers import GPT2Config, GPT2LMHeadModel

    lm = load_causal_lm("ptb-gpt2")  # its tokenizer; the 124M model reads GPT-2's 50,257 ids
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_positions=max(1024, tokens + 1))).eval()
    return causal_lm(model, lm.tokenizer, name="gpt2-124m (random)")


def context_of(lm: Any, tokens: int) -> str:
    """The first ``tokens`` tokens of PTB validation text (a repeated sentence without the data)."""
    text = PTB_VALID.read_text() if PTB_VALID.is_file() else "the stock market fell on monday , traders said . " * 400
    ids = lm.tokenizer(text[: tokens * 12])["input_ids"][:tokens]
    if len(ids) < tokens:
        raise SystemExit(f"the text has only {len(ids)} tokens; ask for fewer")
    return lm.tokenizer.decode(ids)


def probe(tool: str, name: str, tokens: int, threads: int, max_memory: str,
          captum_batch: int | None = None) -> dict[str, Any]:
    """One tool's time to a trusted answer and this process's peak memory."""
    import torch

    torch.set_num_threads(threads)
    lm = load(name, tokens)
    text = context_of(lm, tokens)
    eos = lm.tokenizer.eos_token_id
    ids = torch.tensor([lm.tokenizer(text)["input_ids"]])
    with torch.no_grad():  # the last position's logits only, so this set-up adds no peak of its own
        log_p = torch.log_softmax(lm.model(input_ids=ids, use_cache=False, logits_to_keep=1).logits[0, -1], -1)
        target = int(log_p.argmax())
        base = torch.log_softmax(lm.model(inputs_embeds=lm.embedding(torch.full_like(ids, eos)),
                                          use_cache=False, logits_to_keep=1).logits[0, -1], -1)[target]
    gap = float(log_p[target] - base)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # GiB: interpreter + model
    start, cpu_start = time.perf_counter(), time.process_time()
    if tool == "igkit":
        import igkit

        found = igkit.explain("text", [text], model=lm, baseline="eos", max_memory=max_memory,
                              integration={"tolerance": TRUSTED})
        if found.skipped:
            raise SystemExit(f"igkit skipped the context: {found.skipped[0].reason}")
        summary = found[0].summary
        plan = found[0].attribution.prepared.context["memory_plan"]
        runs = [{"path_points": summary["path_points"], "error": summary["completeness_error"],
                 "points_per_pass": plan.points, "checkpointed_blocks": plan.checkpointed_blocks,
                 "estimated_gib_per_point": round(plan.bytes_per_point / 2 ** 30, 3)}]
    else:
        from captum.attr import LayerIntegratedGradients, LLMGradientAttribution, TextTokenInput

        attribution = LLMGradientAttribution(LayerIntegratedGradients(lm.model, lm.embedding), lm.tokenizer)
        runs = []
        for steps in CAPTUM_STEPS:
            result = attribution.attribute(TextTokenInput(text, lm.tokenizer), target=torch.tensor([target]),
                                           n_steps=steps, method="gausslegendre",
                                           baselines=torch.full_like(ids, eos), internal_batch_size=captum_batch)
            error = abs(float(result.seq_attr.sum()) - gap) / abs(gap)
            runs.append({"path_points": steps, "error": error})
            if error <= TRUSTED:
                break
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    if tool == "igkit":  # the budget is for the attribution's memory, on top of the loaded model
        from igkit.plugins.text.hf_memory import parse_memory

        runs[-1]["max_memory"] = max_memory
        runs[-1]["growth_within_budget"] = (peak - before) * 2 ** 30 <= parse_memory(max_memory)
    return {"tool": tool, "model": name, "tokens": len(ids[0]), "seconds": round(seconds, 2),
            "cpu_seconds": round(cpu_seconds, 2), "runs": runs,
            "trusted": runs[-1]["error"] <= TRUSTED, "threads": threads, "captum_batch": captum_batch,
            "rss_before_gib": round(before, 3),
            "peak_rss_gib": round(peak, 3)}


def measure(tool: str, name: str, tokens: int, threads: int, max_memory: str, cap_gib: float,
            captum_batch: int | None = None) -> dict[str, Any]:
    """:func:`probe` in a fresh process under an address-space cap of ``cap_gib``."""
    command = [sys.executable, "-m", "bench.transformers", "--probe", tool, "--models", name, "--tokens",
               str(tokens), "--threads", str(threads), "--max-memory", max_memory, "--cap-gib", str(cap_gib)]
    if captum_batch:
        command += ["--captum-batch", str(captum_batch)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"tool": tool, "model": name, "tokens": tokens, "failed": tail[:300], "cap_gib": cap_gib}
    return json.loads(done.stdout.strip().splitlines()[-1])


def shown(row: dict[str, Any]) -> dict[str, Any]:
    """``row``, printed as one JSON line as soon as it is measured."""
    print(json.dumps(row), flush=True)
    return row


def machine() -> str:
    """The CPU, its cores and the load at the end of the run (other work shares the machine)."""
    import os

    names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
             if line.startswith("model name")] if Path("/proc/cpuinfo").is_file() else []
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{names[0] if names else 'unknown CPU'}, {os.cpu_count()} cores, load average {load}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.transformers", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="ptb-gpt2", help="ptb-gpt2 and/or gpt2-124m, comma-separated")
    p.add_argument("--tokens", default="100", help="context lengths, comma-separated")
    p.add_argument("--threads", type=int, default=1, help="torch threads of each process")
    p.add_argument("--max-memory", default="2GiB",
                   help="igkit's memory budget for the attribution; several, comma-separated: one igkit row each")
    p.add_argument("--cap-gib", type=float, default=12.0, help="address-space cap of each process")
    p.add_argument("--captum-batch", type=int, default=None,
                   help="Captum's internal_batch_size (default: its own, every step in one pass)")
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    p.add_argument("--probe", choices=("igkit", "captum"), default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.probe:
        cap = int(args.cap_gib * 2 ** 30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        print(json.dumps(probe(args.probe, args.models, int(args.tokens), args.threads, args.max_memory,
                               args.captum_batch)))
        return 0
    rows = []
    for name in args.models.split(","):
        for tokens in (int(t) for t in args.tokens.split(",")):
            ours = [shown(measure("igkit", name, tokens, args.threads, budget, args.cap_gib))
                    for budget in args.max_memory.split(",")]
            theirs = shown(measure("captum", name, tokens, args.threads, args.max_memory.split(",")[0],
                                   args.cap_gib, args.captum_batch))
            rows += [*ours, theirs]
            for row in ours:
                if "seconds" in row and "seconds" in theirs:
                    grown = [r["peak_rss_gib"] - r["rss_before_gib"] for r in (row, theirs)]
                    print(f"{name}, {tokens} tokens, igkit --max-memory {row['runs'][0]['max_memory']}: Captum ÷ "
                          f"igkit seconds {theirs['seconds'] / row['seconds']:.2f} (CPU seconds "
                          f"{theirs['cpu_seconds'] / row['cpu_seconds']:.2f}); peak memory igkit ÷ Captum "
                          f"{row['peak_rss_gib'] / theirs['peak_rss_gib']:.2f} (whole process), "
                          f"{grown[0] / max(grown[1], 1e-9):.2f} (growth during attribution)", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(["python -m bench.transformers", *(argv or sys.argv[1:])]),
                                         "machine": machine(), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
