"""Rewriting a part file without its due rows: temp file, fsync, rename; a file left empty is removed.

The part's subject index (`transforms.privacy.subject_index`) lists the identifiers of the rows before the
rewrite: it is removed before the part is rewritten or removed, and a rewritten part gets the rows of it whose
identifier stays (`kept_index`, staged in the sweep's work folder, committed after the part), so a search keeps
skipping the parts that do not hold a subject and no index lists what the sweep removed. Before the rewrite, the
identifiers that only the removed rows held are written aside (the evidence), so the proof can look for them
afterwards (`proof`), in the part and in its index. Every rewrite is journaled first (`journal`), so a
killed sweep is finished, not redone.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path

from transforms.lake import Lake
from transforms.lake.commit import commit_file, sha256_file
from transforms.lake.connection import columns_of, execute, in_pass, pass_count
from transforms.lake.partitions import INDEX_SUFFIX, index_path
from transforms.policy import Policy
from transforms.privacy.numbers import numbering_params
from transforms.privacy.subject_index import commit_index, kept_index
from transforms.retention.catalog import RetentionError
from transforms.retention.journal import Journal, staged_rewrite
from transforms.retention.plan import Job
from transforms.retention.rows import identifier_columns, row_source, subject_key


def rewrite(con, lake: Lake, policy: Policy, job: Job, journal: Journal, evidence_dir: Path) -> dict:
    """Rewrite `job.file` without the rows of its due keys (the table `removal`); remove it if none stay.

    Returns the journal entry, done.
    """
    path = lake.root / job.file
    before = sha256_file(path)
    value = job.partition.split("=", 1)[1]
    entry = {**asdict(job), "before_sha256": before, "after_sha256": None, "rows_kept": job.rows_before -
             job.rows_removed, "evidence": None, "state": "intent"}
    if job.rows_removed < job.rows_before:
        execute(con, "CREATE OR REPLACE TEMP TABLE removed_keys AS SELECT key FROM removal WHERE file = $file",
                {"file": job.file})
        columns = columns_of(con, path)
        source = row_source(job.dataset, columns)
        params = {**numbering_params(policy.operator), "path": str(path), "value": value}
        tmp = staged_rewrite(path)
        # What the proof will look for: identifiers that only the removed rows hold.
        evidence = evidence_dir / (hashlib.sha256(job.file.encode()).hexdigest()[:16] + ".parquet")
        evidence.parent.mkdir(parents=True, exist_ok=True)
        _write_evidence(con, job, source, columns, policy, {**params, "dst": str(evidence)})
        kept = execute(con, f"""
            COPY (SELECT {', '.join(columns)} FROM {source}
                  WHERE {subject_key(job.dataset, columns)} NOT IN (SELECT key FROM removed_keys))
            TO $tmp (FORMAT parquet, COMPRESSION zstd)""", {**params, "tmp": str(tmp)}).fetchone()[0]
        if kept != entry["rows_kept"]:
            tmp.unlink(missing_ok=True)
            raise RetentionError(f"{job.file}: expected to keep {entry['rows_kept']} rows, the rewrite kept {kept}")
        entry.update(after_sha256=sha256_file(tmp), evidence=str(evidence))
        index = kept_index(con, path, tmp, policy, evidence.with_suffix(INDEX_SUFFIX))
        journal.note(entry)
        index_path(path).unlink(missing_ok=True)
        commit_file(tmp, path)   # commit point: the file without its due rows
        if index:
            commit_index(index, path)    # after its part: a crash between leaves the part to be scanned
    else:
        journal.note(entry)
        index_path(path).unlink(missing_ok=True)
        path.unlink()                      # every row is due: the whole file goes
        _remove_empty_dirs(path.parent, lake.zone(job.dataset))
    entry["state"] = "done"
    return entry


# Rows of a part whose identifiers one grouping takes at a time: ~2M distinct identifiers (a CDR row holds a
# record id of its own and shares its numbers), which a 768 MB connection groups without running out of memory.
EVIDENCE_ROWS_PER_PASS = 1_500_000


def _write_evidence(con, job: Job, source: str, columns: list[str], policy: Policy, params: dict) -> None:
    """The identifiers only removed rows hold, written to the sweep's work dir for the proof.

    One scan grouped by identifier (an identifier is evidence when every row holding it goes), in passes over
    disjoint hash ranges of the identifiers when the part is big: a day's part of a 30M-row night holds ~17M
    distinct identifiers, more than DuckDB grouped in 768 MB (it ran out of memory, spilling or not). The pass
    filter is `in_pass`'s (its numbers written into the SQL: bound, the 13M-row part's passes took 3x as long).
    The passes' files are then joined into one, a plain copy.
    """
    values = ", ".join(f"CAST({c} AS VARCHAR)" for c in identifier_columns(job.dataset, columns, policy))
    key = subject_key(job.dataset, columns)
    passes = pass_count(job.rows_before, EVIDENCE_ROWS_PER_PASS)
    dst = Path(params["dst"])
    pieces = [dst.with_name(f"{dst.stem}-{i}.parquet") for i in range(passes)]
    for i, piece in enumerate(pieces):
        execute(con, f"""
            COPY (SELECT ident FROM (
                      SELECT unnest([{values}]) AS ident, removed
                      FROM (SELECT *, {key} IN (SELECT key FROM removed_keys) AS removed FROM {source}))
                  WHERE ident IS NOT NULL AND {in_pass("hash(ident)", i, passes)}
                  GROUP BY ident HAVING bool_and(removed))
            TO $piece (FORMAT parquet)""", {**params, "piece": str(piece)})
    execute(con, "COPY (SELECT ident FROM read_parquet($pieces)) TO $dst (FORMAT parquet)",
            {"pieces": [str(x) for x in pieces], "dst": str(dst)})
    for piece in pieces:
        piece.unlink()


def _remove_empty_dirs(folder: Path, zone: Path) -> None:
    while folder != zone and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
