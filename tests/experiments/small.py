"""Small configurations shared by the experiments tests (seconds on CPU)."""

SMALL = dict(
    sizes={"train_gt": 60, "train_w2s": 40, "test": 40},
    seeds=[0],
    objectives=["bce", "reverse_bce"],
    teacher={"n_labels": 30},
    l2_grid=[0.0],
    ensemble_size=2,
)
CLI_SMALL = ["--n-train-gt", "60", "--n-train-w2s", "40", "--n-test", "40", "--seeds", "0",
             "--objectives", "bce,reverse_bce", "--teacher-labels", "30", "--l2-grid", "0",
             "--ensemble-size", "2", "--no-progress"]
