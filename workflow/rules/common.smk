# Paths and input functions shared by the rules. Rounds are zero-padded: round_000, ...
RES = f"results/{config['run']}"
LOGS = f"logs/{config['run']}"
BENCH = f"benchmarks/{config['run']}"
N_ROUNDS = config["loop"]["n_rounds"]
ROUNDS = range(N_ROUNDS + 1)
N_SLOTS = config["select"]["n_select"]
FF = config["forcefield"]
INIT_START = config["initial_md"]["start"]


wildcard_constraints:
    k=r"\d{3}",
    slot=r"\d{3}",
    rep=r"\d+",
    start=r"[A-Za-z0-9_]+",


def rnd(k):
    """Round folder of round k (int or zero-padded str)."""
    return f"{RES}/round_{int(k):03d}"


def model_path(k):
    return f"{rnd(k)}/model/model.pt"


def cg_sim_path(k):
    return f"{rnd(k)}/cg_sim/trajectory.h5"


def dataset_path(k):
    return f"{rnd(k)}/dataset/dataset.npz"


def previous_model(wildcards):
    k = int(wildcards.k)
    if k == 0 or not config["train"].get("warm_start", True):
        return []
    return [model_path(k - 1)]


def seed_of(*parts):
    """A reproducible per-job seed from the config seed and the job's wildcards."""
    import zlib
    return (config["seed"] + zlib.crc32("/".join(map(str, parts)).encode())) % (2**31 - 1)
