"""Train the fraud example's model on synthetic payments and save it beside the app.

    python examples/fraud/train.py                    # 20,000 payments, seed 7
    python examples/fraud/train.py --samples 2000 --out /tmp/model.joblib

The payments are drawn with a fixed seed (amounts log-normal, hours uniform, one in ten
made abroad, card velocity Poisson), and labelled fraudulent with a probability that rises
with the amount, night hours, a country that is not the card's and the card's velocity. A
scaled logistic regression learns it; the script prints one JSON line with the held-out ROC
AUC and where the model went.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import joblib
import numpy as np
from fraud_features import NAMES, features
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

MODEL = Path(__file__).with_name("model.joblib")
COUNTRIES = ("GB", "FR", "DE", "US", "NG", "BR")


def payments(samples: int, rng: np.random.Generator) -> list[dict[str, object]]:
    home = rng.choice(COUNTRIES, size=samples)
    abroad = rng.random(samples) < 0.1
    elsewhere = rng.choice(COUNTRIES, size=samples)
    return [
        {
            "id": f"p-{n}",
            "amount": round(float(amount), 2),
            "hour": int(hour),
            "country": str(elsewhere[n] if abroad[n] and elsewhere[n] != home[n] else home[n]),
            "card_country": str(home[n]),
            "velocity": int(velocity),
        }
        for n, (amount, hour, velocity) in enumerate(zip(
            rng.lognormal(3.5, 1.3, samples), rng.integers(0, 24, samples),
            rng.poisson(1.5, samples), strict=True,
        ))
    ]


def labels(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fraud drawn from the ground truth the model has to find."""
    logit = -6.0 + 1.1 * (x[:, 0] - 3.5) + 1.5 * x[:, 1] + 2.5 * x[:, 2] + 0.45 * x[:, 3]
    return (rng.random(len(x)) < 1 / (1 + np.exp(-logit))).astype(int)


def train(samples: int, seed: int, out: Path) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    x = np.array([features(payment) for payment in payments(samples, rng)])
    y = labels(x, rng)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=seed, stratify=y
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x_train, y_train)
    auc = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])
    joblib.dump(model, out)
    return {"samples": samples, "seed": seed, "fraud_rate": round(float(y.mean()), 4),
            "auc": round(float(auc), 4), "features": list(NAMES), "out": str(out)}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=20000, help="synthetic payments")
    parser.add_argument("--seed", type=int, default=7, help="the random seed")
    parser.add_argument("--out", type=Path, default=MODEL, help="where to save the model")
    args = parser.parse_args(argv)
    if args.samples < 500:
        parser.error(f"--samples must be at least 500, not {args.samples}")
    print(json.dumps(train(args.samples, args.seed, args.out)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
