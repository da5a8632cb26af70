"""The report's words, in one place for the PDF, the HTML and the app: the glossary, the
plain-language findings and the guide to reading the numbers."""

from __future__ import annotations

import pandas as pd

from audit import AuditResult, largest_bounds

from ._common import (
    Paragraph,
    accuracy,
    arm_kinds,
    audit_label,
    epsilon_text,
    evaluated_rows,
    fmt,
    gap_row,
    has_dropout,
    is_external,
    level_text,
    private_arms,
    section_titles,
)
from ._tables import audit_ceilings

__all__ = ["GLOSSARY", "finding_paragraphs", "findings", "reading_guide", "violation_text"]

#: Term -> one-line explanation, for the report's glossary and the app's help texts.
GLOSSARY: dict[str, str] = {
    "arm": "One way of training the model that the audit compares (baseline, uniform dropout, "
           "group-specific dropout, DP-SGD), or the uploaded model trained elsewhere.",
    "baseline": "The model trained without dropout and without differential privacy: the "
                "reference every other arm is compared with.",
    "uniform dropout": "Training with dropout at one rate p for every row: each unit is zeroed "
                       "with probability p and the survivors scaled by 1/(1-p). A regulariser, "
                       "not a privacy mechanism: it gives no epsilon.",
    "group-specific dropout": "Dropout whose rate depends on the row's group, solved to equalise "
                              "the groups' errors (or, with the minimax objective, to lower the "
                              "worst group's error) at the same average rate, the budget, as "
                              "uniform dropout.",
    "DP-SGD": "Differentially private training (Abadi et al. 2016): each step samples rows at "
              "random, clips every row's gradient to a fixed norm and adds Gaussian noise, so an "
              "accountant can state an (epsilon, delta) guarantee.",
    "DPSGD-F": "Group-adaptive DP-SGD (the dp_sgd_f arm; Xu, Du and Wu 2021): each step it counts, "
               "per group and with Gaussian noise, the rows whose gradient one clipping bound would "
               "cut, and gives groups cut more often a larger bound; the counts are paid for inside "
               "the same epsilon.",
    "missing features": "Features absent when the model predicts. Measured by setting a feature's "
                        "encoded columns to zero and scaling the row's other columns by 1/(1 - p), "
                        "as dropout does to a dropped input in training, at a rate p per group.",
    "epsilon": "The privacy loss a differentially private algorithm guarantees: adding or removing "
               "one row changes the probability of any outcome by at most a factor e^epsilon "
               "(except with probability delta). Smaller is more private; 'no guarantee' means "
               "none can be stated.",
    "delta": "The small probability with which an (epsilon, delta) guarantee may fail; by default "
             "min(1e-5, 1/(10 x training rows)), well below one row's share.",
    "accountant": "The computation that turns DP-SGD's noise level, sampling rate and number of "
                  "steps into its (epsilon, delta) guarantee (PRV by default, RDP as an option).",
    "proven epsilon lower bound": "What a canary audit proves at its confidence: training leaks at "
                                  "least as much as this epsilon allows. Evidence of leakage, "
                                  "never a guarantee; above the claimed epsilon it proves the "
                                  "claim wrong; 0 proves nothing.",
    "canaries": "Rows (for the white-box gradient audit: gradient vectors) that a coin flip puts "
                "into training with probability 1/2; the audit then guesses which went in, and "
                "enough right guesses prove leakage.",
    "flipped": "Flipped canary labels, the default for the black-box audit: test rows with their "
               "label flipped, which a model can fit only by memorising them, so their membership "
               "is easier to detect.",
    "membership inference": "An attack that tells from a model's outputs whether a row was in its "
                            "training data (a member); judged by its AUC and by the share of "
                            "members it finds at a low false positive rate.",
    "loss-threshold attack": "The simplest membership-inference attack (Yeom et al. 2018): rows on "
                             "which the model's loss is low are guessed to be members.",
    "LiRA": "Likelihood-ratio attack (Carlini et al. 2022), offline version: shadow models show how "
            "confident a model is on a row it did not train on; a row on which the audited model is "
            "far more confident than that is guessed a member.",
    "RMIA": "Robust membership inference (Zarifzadeh et al. 2024): compares a row's likelihood ratio "
            "(the audited model's probability against the shadow models') with those of rows no "
            "model trained on; strong at low false positive rates with few shadow models.",
    "shadow models": "Models trained like the audited one on random halves of the data, which LiRA "
                     "and RMIA use as references.",
    "trainer": "The engine that trains the models: 'batched' trains all of an audit's models at once "
               "(stacked MLPs), 'reference' one model at a time with PyTorch and Opacus; 'auto' "
               "picks batched whenever every arm uses the built-in MLP.",
    "seeds": "Repetitions of training with different random initialisation, dropout masks and batch "
             "order; metrics are averaged over seeds, and their spread shows training randomness.",
    "epochs": "Passes over the training rows during training.",
    "error gap": "The difference between the highest and the lowest group error rate (max - min), "
                 "with a confidence interval; an interval that includes 0 means the gap is within "
                 "noise.",
    "confidence interval": "A range that contains the true value with the probability named with "
                           "it (its level). Rates and gaps use score intervals (Wilson, Newcombe), "
                           "which keep their level in small groups; AUC and log-loss resample the "
                           "evaluated rows within each group (bootstrap).",
    "simultaneous intervals": "Intervals that hold together across all groups (and gaps across "
                              "all pairs of groups), each at a higher level (Bonferroni), so that "
                              "with many groups no interval misses by chance more often than the "
                              "level says.",
    "TPR @ FPR": "True positive rate at a fixed false positive rate: the share of members an attack "
                 "finds while wrongly flagging at most 1% (or 0.1%) of non-members.",
}

#: The glossary terms that apply to an audit of a model trained elsewhere.
_EXTERNAL_TERMS = ("error gap", "confidence interval", "epsilon", "membership inference",
                   "loss-threshold attack", "TPR @ FPR")


def glossary_for(result: AuditResult) -> dict[str, str]:
    """The glossary entries that apply to ``result`` (all of them for a trained audit)."""
    if is_external(result):
        return {t: GLOSSARY[t] for t in _EXTERNAL_TERMS}
    return dict(GLOSSARY)


def violation_text(result: AuditResult) -> str | None:
    if not result.dp_violations:
        return None
    return ("DP VIOLATION: the empirical epsilon lower bound exceeds the accountant's epsilon for "
            f"{', '.join(result.dp_violations)}. The differential-privacy implementation or its "
            "accounting is wrong; do not rely on its guarantee.")


def finding_paragraphs(result: AuditResult) -> list[Paragraph]:
    """The findings with their styles (a violation first, as a warning)."""
    blocks: list[Paragraph] = []
    violation = violation_text(result)
    if violation:
        blocks.append(Paragraph(violation, "warning"))
    arms = result.arm_names
    ci = level_text(result.ci_level)
    gaps = {a: gap_row(result, a) for a in arms}
    valid = {a: g for a, g in gaps.items() if g is not None and not pd.isna(g["value"])}
    if valid:
        best = min(valid, key=lambda a: float(valid[a]["value"]))
        g = valid[best]
        interval = ("" if pd.isna(g["ci_low"]) else
                    f"{ci} CI {fmt(g['ci_low'])} to {fmt(g['ci_high'])}; ")
        where = f"{interval}highest error in {g['max_group']}, lowest in {g['min_group']}"
        if len(arms) == 1:
            on = "the uploaded predictions" if is_external(result) else best
            text = f"Error gap between groups ({on}): {fmt(g['value'])} ({where})."
        else:
            text = f"Smallest error gap between groups: {best}, {fmt(g['value'])} ({where})."
        if "baseline" in arms and best != "baseline":
            cost = accuracy(result, "baseline") - accuracy(result, best)
            side = "lower" if cost > 0 else "higher"
            text += f" Its accuracy is {fmt(abs(cost))} {side} than the baseline's."
        if pd.isna(g["exceeds_uncertainty"]):
            text += " No confidence interval was computed, so its uncertainty is unknown."
        elif not bool(g["exceeds_uncertainty"]):
            text += " This gap is within its uncertainty: it is not evidence of a difference."
        blocks.append(Paragraph(text, "finding"))
    private = private_arms(result)
    others = [a for a in arms if a not in private]
    kinds = arm_kinds(result)
    if private:
        blocks.append(Paragraph(
            "Formal privacy guarantee: " + "; ".join(
                f"{a} (epsilon {epsilon_text(result, a)})" for a in private) + ".", "finding"))
    if is_external(result):
        blocks.append(Paragraph(
            "No formal privacy guarantee: the model was trained elsewhere, by a mechanism this "
            "audit cannot see, so no epsilon can be stated.", "finding"))
    elif others:
        why = []
        if any(kinds.get(a) in ("uniform_dropout", "group_dropout") for a in others):
            mechanism = section_titles(result).get("mechanism", "")
            number = mechanism.split(".")[0]
            why.append("dropout, however strong, is not differential privacy"
                       + (f" (section {number})" if number else ""))
        blocks.append(Paragraph(
            f"No formal privacy guarantee: {', '.join(others)}"
            + (f"; {'; '.join(why)}" if why else "") + ".", "finding"))
    blocks += _mia_findings(result)
    if not result.empirical.empty:
        largest = largest_bounds(result.privacy_bounds())
        leaking = [f"{r['arm']} ({fmt(r['epsilon_lower_bound'], 2)}, {audit_label(r['audit'])})"
                   for _, r in largest.iterrows() if r["epsilon_lower_bound"] > 0]
        if leaking:
            blocks.append(Paragraph(
                "Measurable leakage (largest proven epsilon lower bound above 0, "
                f"{level_text(result.confidence)} confidence; the audit that gave it in brackets): "
                + ", ".join(leaking) + ". A lower bound shows leakage; it is never a guarantee.",
                "finding"))
    return blocks


def _mia_findings(result: AuditResult) -> list[Paragraph]:
    mia = result.mia
    if mia.empty:
        return []
    sel = mia[mia["seed"].isna() & (mia["attack"] == "loss") & (mia["metric"] == "auc")
              & (mia["group"] != "overall") & mia["available"].astype(bool)]
    if sel.empty:
        return []
    top = sel.sort_values("value", kind="stable").iloc[-1]
    above = sel[sel["ci_low"] > 0.5]
    several = len(result.arm_names) > 1
    if above.empty:
        return [Paragraph(
            "Membership inference: no group's attack AUC is above 0.5 (chance) beyond its "
            f"uncertainty; the highest is {fmt(top['value'])} for group {top['group']}"
            + (f" under {top['arm']}." if several else "."), "finding")]
    worst = above.sort_values("value", kind="stable").iloc[-1]
    return [Paragraph(
        f"Largest per-group privacy risk: membership-inference AUC {fmt(worst['value'])} "
        f"(CI {fmt(worst['ci_low'])} to {fmt(worst['ci_high'])}) for group "
        f"{worst['group']}" + (f" under {worst['arm']}" if several else "")
        + "; 0.5 means the attack does no better than chance.", "finding")]


def findings(result: AuditResult) -> list[str]:
    """The plain-language findings of ``result``, as the report's Findings section shows
    them, in order: a DP violation first (when there is one), the smallest error gap,
    the formal guarantees (or their absence, and why), membership inference and proven
    leakage."""
    return [p.text for p in finding_paragraphs(result)]


def reading_guide(result: AuditResult) -> list[str]:
    """How to read this result's numbers, one short paragraph each, in the report's words:
    the error gap and its interval, epsilon (the claim) against a proven lower bound (is
    0.42 good or bad?), what each canary audit could have detected, and membership
    inference. Only the items that apply to ``result``."""
    ci = level_text(result.ci_level)
    items = [
        f"Error gap: the difference between the highest and the lowest group error rate (max - min) "
        f"on {evaluated_rows(result)}, with its {ci} confidence interval (Newcombe's score "
        "interval, which keeps its level for groups of a few dozen rows). An interval that "
        "includes 0 means the gap is within noise: not evidence that the groups differ."
    ]
    private = private_arms(result)
    if is_external(result):
        items.append("Epsilon: a model trained elsewhere has no formal privacy guarantee: the audit "
                     "cannot see how it was trained, so it states no epsilon.")
    elif private:
        items.append("Epsilon (the claim): the formal differential-privacy guarantee that DP-SGD's "
                     "accountant computes for " + ", ".join(private) + "; smaller is more private. "
                     "'No guarantee' means the arm has none, however good its empirical results look"
                     + (" (dropout is not differential privacy)." if has_dropout(result) else "."))
    else:
        items.append("Epsilon: no arm of this audit has a formal privacy guarantee; only DP-SGD "
                     "provides one.")
    if not result.empirical.empty:
        items.append(_bound_guide(result))
        ceilings = _ceiling_guide(result)
        if ceilings:
            items.append(ceilings)
    elif not is_external(result):
        items.append("No canary audit ran, so no epsilon lower bound was measured.")
    if not result.mia.empty:
        items.append("Membership-inference AUC: how well an attacker tells the rows a model trained on "
                     "from rows it did not see; 0.5 is chance, 1 is certainty. An AUC whose "
                     "interval lies above 0.5 is evidence of leakage. The true "
                     "positive rate at a false positive rate of 0.1% is the stricter measure: a few "
                     "rows exposed with confidence matter more than the average.")
    elif is_external(result):
        items.append("Membership inference needs the model's scores and which rows it trained on "
                     "(a member column); without both, this audit measures fairness only.")
    if result.solutions:
        items.append("Group-specific dropout: each verdict states the smallest reduction of the gap "
                     "its held-out test could detect. 'No improvement' with a detectable reduction "
                     "smaller than the one you care about means it does not help; otherwise this "
                     "data cannot tell.")
    return items


def _bound_guide(result: AuditResult) -> str:
    conf = level_text(result.confidence)
    text = ("Proven epsilon lower bound: evidence of leakage, never a guarantee. A bound of, say, "
            f"0.42 means the canary audit proves, at {conf} confidence, that training leaks at least "
            "as much as epsilon 0.42 allows. Whether that is bad depends on the claim: below an "
            "arm's claimed epsilon it is consistent with the claim (a bound well below the claim is "
            "normal: the audit sees less than the guarantee covers); above the claim it proves the "
            "DP implementation or its accounting wrong. For an arm without a guarantee any bound "
            "above 0 is proven leakage, the larger the worse. A bound of 0 proves nothing: the audit "
            "could not see leakage, which is not evidence of privacy.")
    top = largest_bounds(result.privacy_bounds())
    here = []
    for _, r in top.iterrows():
        claim = r["accountant_epsilon"]
        bound = fmt(r["epsilon_lower_bound"], 2)
        if pd.isna(claim):
            continue
        reading = ("above it: a violation" if r["dp_violation"] else
                   "consistent with it" if r["epsilon_lower_bound"] > 0 else "nothing proven")
        here.append(f"{r['arm']} claims {fmt(claim, 2)} and the audits prove {bound} ({reading})")
    if here:
        text += " Here: " + "; ".join(here) + "."
    return text


def _ceiling_guide(result: AuditResult) -> str:
    """What the canary audits could have detected, and which bounds reached that ceiling."""
    ceilings = audit_ceilings(result)
    if not ceilings:
        return ""
    bounds = result.privacy_bounds()
    per_audit: dict[str, float] = {}
    for (_, audit), c in ceilings.items():
        per_audit[audit] = max(per_audit.get(audit, 0.0), c)
    text = ("What the audits could have detected: with the guesses it made, an audit can prove at "
            "most " + "; ".join(f"{fmt(c, 2)} ({audit_label(a)})" for a, c in per_audit.items())
            + ", when every guess is right.")
    saturated, short = [], []
    for _, r in bounds.iterrows():
        ceiling = ceilings.get((str(r["arm"]), str(r["audit"])))
        if ceiling is None:
            continue
        name = f"{r['arm']} ({audit_label(str(r['audit']))})"
        if r["epsilon_lower_bound"] > 0 and r["epsilon_lower_bound"] >= ceiling - 1e-6:
            saturated.append(name)
        if not pd.isna(r["accountant_epsilon"]) and ceiling < float(r["accountant_epsilon"]):
            short.append(name)
    if saturated:
        text += (" Every guess was right for " + ", ".join(saturated) + ": those arms leak at least "
                 "that much and possibly far more.")
    if short:
        text += (" These audits could not have shown a violation even in the worst case, because "
                 "their ceiling is below the claim: " + ", ".join(short) + ".")
    return text
