"""Planted bugs in the plumbing of the experiments (claim C9, Chapter 5): the run store
and its records, locks and shards, run ids and the plan, configuration checks, the data
loaders and their checksums, the embedding caches and artifacts, the verified model
weights and the command line.

The promise they probe: bad input gets a clear error naming the parameter before work
starts; long runs write atomically and resume; a cached artifact is validated (checksum,
config hash) and never silently reused when stale. Each names the smallest set of tests
that must catch it; ``python -m tests.mutants.run --only plumb-`` runs them (63 mutants,
about 12 minutes on two shared cores).
"""

from tests.mutants.run import Mutant

X = "w2sg_utils/experiments/"
C = "w2sg_utils/_common.py"
T = "tests/experiments/"
T_STORE = T + "test_store.py"
T_REC = T + "test_records.py"
T_SHARD = T + "test_sharding.py"
T_PLAN = T + "test_plan.py"
T_SRC = T + "test_sources.py"
T_DATA = T + "test_data.py"
T_CFG = T + "test_config.py"
T_CTX = T + "test_context.py"
T_ART = T + "test_embedding_artifact.py"
T_MPNET = T + "test_mpnet.py"
T_MOD = T + "test_models.py"
T_PLUMB = T + "test_plumbing.py"
P_ART_VECTORS = T_PLUMB + "::test_artifact_vectors_only_from_verified_chunks_of_the_same_encoder"
P_BOOL_LABEL = T_PLUMB + "::test_boolean_class_labels_are_refused"
P_CAUSAL_TEACHER = T_PLUMB + "::test_causal_lm_teacher_needs_a_causal_lm_preset"
P_TABLE_SHA = T_PLUMB + "::test_changed_table_file_is_refused_against_its_manifest"
P_CLI = T_PLUMB + "::test_command_line_overrides_reach_their_own_fields"
P_WRITERS = T_PLUMB + "::test_concurrent_writers_keep_every_run_in_order"
P_DATA_LABEL = T_PLUMB + "::test_data_label_sees_the_rejected_texts"
P_ENC_KEY = T_PLUMB + "::test_encoder_cache_key_changes_with_the_weights"
P_ATOMIC = T_PLUMB + "::test_failed_atomic_write_keeps_the_old_file_and_no_temporary"
P_SHA256 = T_PLUMB + "::test_file_sha256_reads_every_chunk"
P_DTYPE = T_PLUMB + "::test_finetune_dtype_is_float32_or_bfloat16"
P_FULL = T_PLUMB + "::test_full_uses_the_full_sizes"
P_MAXLEN = T_PLUMB + "::test_model_max_length_leaves_out_mpnets_reserved_positions"
P_FINGERPRINT = T_PLUMB + "::test_pair_fingerprint_sees_both_texts_and_the_labels"
P_ARTIFACT = T_PLUMB + "::test_rewritten_artifact_with_its_old_checksum_is_refused"
P_CACHE = T_PLUMB + "::test_embedding_cache_refuses_foreign_or_rewritten_shards"
P_MANIFEST = T_PLUMB + "::test_manifest_of_another_file_is_named_in_the_error"
P_PAIR = T_PLUMB + "::test_pair_embeddings_refuse_a_pair_whose_label_does_not_match_its_texts"
P_TEXTS = T_PLUMB + "::test_chunk_of_other_texts_is_refused_as_stale"
P_RUN_ID = T_PLUMB + "::test_run_ids_that_are_not_plain_file_names_are_refused"
P_RESUME = T_PLUMB + "::test_run_with_an_artifact_but_no_record_is_finished_on_resume"

MUTANTS = [
    # ------------------------------------------------------------------- _common.py
    Mutant("plumb-common-atomic-in-place", C,
           '    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")\n',
           '    fd, tmp = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), str(path) + "~"\n',
           tests=(P_ATOMIC,), why="the file is truncated and written in place"),
    Mutant("plumb-common-atomic-leaves-tmp", C,
           "        if os.path.exists(tmp):\n            os.unlink(tmp)",
           "        pass",
           tests=(P_ATOMIC,), why="a failed write leaves its temporary behind"),
    Mutant("plumb-common-sha256-first-chunk", C,
           '        for chunk in iter(lambda: f.read(1 << 22), b""):\n            h.update(chunk)',
           "        h.update(f.read(1 << 22))",
           tests=(P_SHA256,), why="digest of the first 4 MiB only"),
    # ------------------------------------------------------------------- records.py
    Mutant("plumb-records-checksum-not-compared", X + "records.py",
           "              and obj.get(\"checksum\") == _sha(_canonical(body)))",
           "              and obj.get(\"checksum\") is not None)",
           tests=(T_REC,), why="a record's checksum is present but never compared"),
    Mutant("plumb-records-other-runs-record", X + "records.py",
           "              and body.get(\"run_id\") == rid and isinstance(body.get(\"seq\"), int)",
           "              and isinstance(body.get(\"seq\"), int)",
           tests=(T_REC,), why="another run's record accepted under this id"),
    Mutant("plumb-records-torn-line-without-newline", X + "records.py",
           "        if len(rec) != len(header) or not text[:pos].endswith(\"\\n\") or n_bad:",
           "        if len(rec) != len(header) or n_bad:",
           tests=(T_REC,), why="a last line cut before its newline is read as whole"),
    Mutant("plumb-records-dot-run-id", X + "records.py",
           " or not _RID.fullmatch(rid) or rid.startswith(\".\"):",
           " or not _RID.fullmatch(rid):",
           tests=(P_RUN_ID,), why="'..' accepted as a run id (a path out of runs/)"),
    # --------------------------------------------------------------------- store.py
    Mutant("plumb-store-artifact-checksum-self", X + "store.py",
           "and str(z[\"__checksum\"]) == self._checksum(rid, arrays))",
           "and str(z[\"__checksum\"]) == str(z[\"__checksum\"]))",
           tests=(P_ARTIFACT,), why="artifact checksum compared with itself"),
    Mutant("plumb-store-duplicate-append", X + "store.py",
           "            if any(r[\"run_id\"] == rid for r in recs):\n",
           "            if False:\n",
           tests=(T_STORE,), why="a second record of a finished run overwrites it"),
    Mutant("plumb-store-record-without-artifact-sha", X + "store.py",
           "            sha = file_sha256(art) if art.is_file() else None\n",
           "            sha = None\n",
           tests=(T_REC,), why="the record does not pin its artifact's digest"),
    Mutant("plumb-store-repair-artifact-not-compared", X + "store.py",
           "        return None if file_sha256(p) == sha else \"artifact fails its checksum\"",
           "        return None",
           tests=(T_REC,), why="repair keeps a tampered artifact"),
    Mutant("plumb-store-stale-index-returned", X + "store.py",
           "            if have == ids and len(df) == len(ids):",
           "            if have <= ids:",
           tests=(T_REC,), why="an index missing the last run is served as it is"),
    Mutant("plumb-store-recomputed-artifact-old-sha", X + "store.py",
           "                data = encode_record(rid, rec[\"row\"], rec[\"seq\"], file_sha256(path))",
           "                data = encode_record(rid, rec[\"row\"], rec[\"seq\"], "
           "rec[\"artifact_sha256\"])",
           tests=(T_REC,), why="record keeps the old artifact's digest"),
    Mutant("plumb-store-broken-records-ignored", X + "store.py",
           "        recs, bad = self.records()\n        if bad:",
           "        recs, bad = self.records()\n        if False:",
           tests=(T_REC,), why="a record failing its checksum silently left out"),
    Mutant("plumb-store-append-without-lock", X + "store.py",
           "        rid = check_run_id(row[\"run_id\"])\n        with store_lock(self.root):",
           "        rid = check_run_id(row[\"run_id\"])\n        with open(os.devnull):",
           tests=(P_WRITERS,), why="concurrent writers lose each other's runs"),
    # ------------------------------------------------------------------ sharding.py
    Mutant("plumb-shard-parse-i-equals-n", X + "sharding.py",
           "    if n < 1 or i >= n:", "    if n < 1 or i > n:",
           tests=(T_SHARD + "::test_parse_shard_errors",), why="shard N/N accepted"),
    Mutant("plumb-shard-duplicates-runs", X + "sharding.py",
           "items() if s == i}", "items() if s <= i}",
           tests=(T_SHARD + "::test_shards_partition_the_runs_evenly",),
           why="a run given to several shards"),
    Mutant("plumb-shard-unsorted-deal", X + "sharding.py",
           "enumerate(sorted(set(run_ids)))", "enumerate(set(run_ids))",
           tests=(T_SHARD + "::test_assignment_depends_on_the_ids_only",),
           why="assignment depends on the process's hash order"),
    Mutant("plumb-shard-lock-not-taken", X + "sharding.py",
           "        if fcntl is not None:\n            _acquire(fd, path, timeout)",
           "        if fcntl is None:\n            _acquire(fd, path, timeout)",
           tests=(T_SHARD + "::test_lock_serialises_read_modify_write_across_processes",),
           why="the flock is never taken"),
    # ---------------------------------------------------------------------- plan.py
    Mutant("plumb-plan-ignores-ceiling", X + "plan.py",
           "    keys += (\"ceiling\",) if cfg.ceiling is not None else ()\n", "",
           tests=(T_PLAN,), why="a changed ceiling reuses stale runs"),
    Mutant("plumb-plan-ignores-protocol", X + "plan.py",
           "    keys += (\"protocol\",) if cfg.protocol is not None else ()\n", "",
           tests=(T_PLAN + "::test_run_id_depends_on_the_protocol",),
           why="a run under the released objectives reused for ours"),
    Mutant("plumb-plan-spec-seed-from-seed-only", X + "plan.py",
           "    return int(config_hash(spec)[:8], 16) % (2 ** 31)",
           "    return int(config_hash(spec.get(\"seed\"))[:8], 16) % (2 ** 31)",
           tests=(T_PLAN + "::test_spec_seed_differs_between_runs_of_one_seed",),
           why="distinct runs share one random stream"),
    # ------------------------------------------------------------------ sections.py
    Mutant("plumb-sections-seeds-bool", X + "sections.py",
           "any(isinstance(s, bool) or not isinstance(s, (int, np.integer))",
           "any(not isinstance(s, (int, np.integer))",
           tests=(T_CFG,), why="seeds=[True] accepted"),
    Mutant("plumb-sections-seeds-duplicates", X + "sections.py",
           "                       for s in seeds) or len(set(seeds)) != len(seeds)):",
           "                       for s in seeds)):",
           tests=(T_CFG,), why="a repeated seed accepted"),
    Mutant("plumb-sections-one-test-pair", X + "sections.py",
           "        if self.test < 2:", "        if self.test < 1:",
           tests=(T_CFG,), why="a single test pair accepted"),
    Mutant("plumb-sections-ensemble-of-one", X + "sections.py",
           "\"ensemble_size\", 0) == 1:", "\"ensemble_size\", 0) == -1:",
           tests=(T_CFG,), why="ensemble_size 1 accepted"),
    Mutant("plumb-sections-causal-teacher-any-backend", X + "sections.py",
           "        if t.kind == \"causal_lm\" and self.backend != \"causal_lm\":",
           "        if t.kind == \"causal_lm\" and self.backend == \"finetune\":",
           tests=(P_CAUSAL_TEACHER,),
           why="a causal-LM teacher let through with an embedding preset"),
    Mutant("plumb-sections-negative-l2-grid", X + "sections.py",
           "            non_negative(v, \"l2_grid\")", "            float(v)",
           tests=(T_CFG,), why="a negative L2 on the grid accepted"),
    Mutant("plumb-sections-float16-dtype", X + "sections.py",
           "        if self.dtype not in (\"float32\", \"bfloat16\"):",
           "        if self.dtype not in (\"float32\", \"bfloat16\", \"float16\"):",
           tests=(P_DTYPE,), why="an unsupported dtype let through"),
    Mutant("plumb-sections-message-drops-section", X + "sections.py",
           "        positive_int(self.n_labels, \"teacher.n_labels\")",
           "        positive_int(self.n_labels, \"labels\")",
           tests=(T_CFG,), why="the message no longer names teacher.n_labels"),
    # -------------------------------------------------------------------- config.py
    Mutant("plumb-config-full-ignored", X + "config.py",
           "        cfg = dataclasses.replace(cfg, sizes=cfg.full_sizes)", "        pass",
           tests=(P_FULL,), why="--full runs the small sizes"),
    Mutant("plumb-config-section-key-unchecked", X + "config.py",
           "            for k in value:\n                _known(current, k, f\"{key}.\")\n",
           "",
           tests=(T_CFG,), why="an unknown section key fails without naming it"),
    # ---------------------------------------------------------------------- data.py
    Mutant("plumb-data-checksum-self", X + "data.py",
           "        if got != sha256:", "        if got != got:",
           tests=(T_DATA,), why="the manifest checksum compared with itself"),
    Mutant("plumb-data-fingerprint-ignores-rejected", X + "data.py",
           "        h.update(hashlib.sha256(b.encode()).digest())\n", "",
           tests=(P_FINGERPRINT,), why="a changed text_b keeps the run ids"),
    Mutant("plumb-data-whitespace-text", X + "data.py",
           "            if not v.strip():", "            if not v:",
           tests=(T_DATA,), why="a whitespace-only text accepted"),
    Mutant("plumb-data-empty-line-inside", X + "data.py",
           "            if i == len(lines):\n                continue",
           "            continue",
           tests=(T_DATA,), why="an empty line inside a file skipped"),
    Mutant("plumb-data-size-over-available", X + "data.py",
           "    if n > available:", "    if n > available + 1:",
           tests=(T_SRC,), why="one pair more than the file holds accepted"),
    Mutant("plumb-data-bool-class-label", X + "data.py",
           "        if isinstance(y, bool) or not isinstance(y, (int, np.integer)) or y < 0:",
           "        if not isinstance(y, (int, np.integer)) or y < 0:",
           tests=(P_BOOL_LABEL,), why="a boolean class label accepted"),
    Mutant("plumb-data-source-wrong-split", X + "data.py",
           "            rows = source.rows(s)", "            rows = source.rows(SPLITS[k // 2])",
           tests=(T_SRC,), why="train_w2s read from train_gt of the user's folder"),
    # ------------------------------------------------------------------- sources.py
    Mutant("plumb-sources-manifest-ignored", X + "sources.py",
           "            return e[\"sha256_uncompressed\"], f\"{self.folder / MANIFEST}\"",
           "            return None, \"\"",
           tests=(T_SRC,), why="the folder's manifest never checked"),
    Mutant("plumb-sources-shipped-names-unverified", X + "sources.py",
           "        if path.name.startswith(\"hh_helpful_\"):",
           "        if path.name.startswith(\"hh-helpful_\"):",
           tests=(T_SRC,), why="a changed copy of the shipped files accepted"),
    Mutant("plumb-sources-table-sha-not-computed", X + "sources.py",
           "            if want is not None:\n                got = sha256_bytes(data)",
           "            if want is not None:\n                got = want",
           tests=(P_TABLE_SHA,), why="a changed parquet/csv accepted despite the manifest"),
    Mutant("plumb-sources-manifest-file-name", X + "sources.py",
           "            if e.get(\"file\", path.name) != path.name:",
           "            if False:",
           tests=(P_MANIFEST,), why="a manifest of another file accepted"),
    Mutant("plumb-sources-hub-w2s-is-gt", X + "sources.py",
           "                                \"train_w2s\": (dd[train], h, len(dd[train])),",
           "                                \"train_w2s\": (dd[train], 0, h),",
           tests=(T_SRC,), why="the wrong half of train loaded as train_w2s"),
    Mutant("plumb-sources-label-ignores-rejected", X + "sources.py",
           "            h.update(json.dumps([r[\"chosen\"], r[\"rejected\"]]).encode(\"utf-8\"))",
           "            h.update(json.dumps([r[\"chosen\"]]).encode(\"utf-8\"))",
           tests=(P_DATA_LABEL,), why="a data label blind to the rejected texts"),
    # ------------------------------------------------------------------- context.py
    Mutant("plumb-context-embeddings-ignore-encoder", X + "context.py",
           "        key = (split, encoder)", "        key = split",
           tests=(T_CTX + "::test_embeddings_are_kept_apart_per_encoder",),
           why="a truncated teacher encoder served the strong one's vectors"),
    # ---------------------------------------------------------------- embeddings.py
    Mutant("plumb-embeddings-key-ignores-length", X + "embeddings.py",
           "                \"max_length\": self.max_length,\n", "",
           tests=(P_ENC_KEY,),
           why="a cache of another max_length reused"),
    Mutant("plumb-embeddings-shard-key-unchecked", X + "embeddings.py",
           "                ok = (key == self.key and emb.ndim == 2",
           "                ok = (emb.ndim == 2",
           tests=(P_CACHE,),
           why="another encoder's shard reused"),
    Mutant("plumb-embeddings-shard-checksum-self", X + "embeddings.py",
           "                      and check == self._checksum(hashes, emb))",
           "                      and check == check)",
           tests=(P_CACHE,),
           why="a tampered shard reused"),
    Mutant("plumb-embeddings-digest-ignores-weights", X + "embeddings.py",
           "        if f.name == \"config.json\" or f.suffix in (\".safetensors\", \".bin\"):",
           "        if f.name == \"config.json\":",
           tests=(P_ENC_KEY,), why="changed weights keep the cache key"),
    # ----------------------------------------------------------- embedding_store.py
    Mutant("plumb-embstore-chunk-digest-skipped", X + "embedding_store.py",
           "            if not f.is_file() or file_sha256(f) != c[\"sha256\"]:",
           "            if not f.is_file():",
           tests=(P_ART_VECTORS,), why="a tampered artifact chunk served to embed_texts"),
    Mutant("plumb-embstore-truncated-encoder-served", X + "embedding_store.py",
           "    if num_layers is not None or truncation_side != \"left\":",
           "    if truncation_side != \"left\":",
           tests=(P_ART_VECTORS,), why="a truncated encoder served the full model's vectors"),
    Mutant("plumb-embstore-settings-ignore-weights", X + "embedding_store.py",
           "    if any(man.get(k) != v for k, v in settings.items()):",
           "    if any(man.get(k) != v for k, v in settings.items() if k != \"model_sha256\"):",
           tests=(P_ART_VECTORS,), why="an artifact of other weights served"),
    # -------------------------------------------------------- embedding_artifact.py
    Mutant("plumb-embart-texts-not-compared", X + "embedding_artifact.py",
           "            and c[\"text_sha256\"] == hashes[c[\"start\"]: c[\"stop\"]])",
           "            )",
           tests=(P_TEXTS,),
           why="a chunk of changed texts reused"),
    Mutant("plumb-embart-load-settings-unchecked", X + "embedding_artifact.py",
           "        bad = sorted(k for k, v in settings.items() if man.get(k) != v)",
           "        bad = []",
           tests=(T_ART + "::test_stale_settings_are_refused",),
           why="stale manifest settings accepted on loading"),
    Mutant("plumb-embart-pair-label-unchecked", X + "embedding_artifact.py",
           "        if ta != (r[\"chosen\"] if a_is_chosen[i] else r[\"rejected\"]):",
           "        if ta not in (r[\"chosen\"], r[\"rejected\"]):",
           tests=(P_PAIR,),
           why="pairs with wrong labels get swapped vectors"),
    # --------------------------------------------------------------------- mpnet.py
    Mutant("plumb-mpnet-digest-not-compared", X + "mpnet.py",
           "    if found_size != size or digest != sha256:", "    if found_size != size:",
           tests=(T_MPNET,), why="weights of the right size but wrong bytes accepted"),
    # ------------------------------------------------------------------ finetune.py
    Mutant("plumb-finetune-position-offset", X + "finetune.py",
           "    offset = cfg.pad_token_id + 1 if cfg.model_type in OFFSET_POSITIONS else 0",
           "    offset = 0",
           tests=(P_MAXLEN,), why="MPNet's 514 positions taken as 514 tokens"),
    # -------------------------------------------------------------------- models.py
    Mutant("plumb-models-tfidf-C-zero", X + "models.py",
           "        if not (isinstance(C, (int, float)) and C > 0 and np.isfinite(C)):",
           "        if not (isinstance(C, (int, float)) and C >= 0 and np.isfinite(C)):",
           tests=(T_MOD + "::test_tfidf_teacher",), why="C = 0 accepted"),
    # --------------------------------------------------------------- distributed.py
    Mutant("plumb-dist-gather-duplicates", X + "distributed.py",
           "    if len(got) != n or np.any(got != np.arange(n)):", "    if len(got) != n:",
           tests=("tests/experiments/test_distributed.py::"
                  "test_gather_refuses_missing_or_duplicate_pairs",),
           why="a pair predicted twice and another never"),
    # ----------------------------------------------------------------------- cli.py
    Mutant("plumb-cli-student-l2-to-teacher", X + "cli.py",
           "        ov[\"strong\"] = {\"l2\": args.student_l2}",
           "        ov[\"teacher\"] = {\"l2\": args.student_l2}",
           tests=(P_CLI,), why="--student-l2 applied to the teacher"),
    Mutant("plumb-cli-n-seeds-from-one", X + "cli.py",
           "        ov[\"seeds\"] = list(range(positive_int(args.n_seeds, \"n_seeds\")))",
           "        ov[\"seeds\"] = list(range(1, positive_int(args.n_seeds, \"n_seeds\") + 1))",
           tests=(P_CLI,), why="--n-seeds 3 runs seeds 1..3"),
    Mutant("plumb-cli-lm-options-on-embedding", X + "cli.py",
           "    if preset.backend != \"causal_lm\":\n        for k, v in lm_opts.items():",
           "    if preset.backend == \"finetune\":\n        for k, v in lm_opts.items():",
           tests=(P_CLI,), why="--student-model silently ignored by an embedding preset"),
    # --------------------------------------------------------------------- sweep.py
    Mutant("plumb-sweep-artifact-without-record-reused", X + "sweep.py",
           "        if arrays is not None and done:\n            return arrays",
           "        if arrays is not None:\n            return arrays",
           tests=(P_RESUME,), why="an unfinished run (artifact, no record) skipped on resume"),
]
