from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlcycle.explain._deps import import_shap

FEATURES = ["energy", "valence", "tempo", "genre_Pop"]


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "energy": rng.uniform(0, 1, n),
            "valence": rng.uniform(0, 1, n),
            "tempo": rng.normal(120, 25, n),
            "genre_Pop": rng.integers(0, 2, n).astype(float),
        },
        index=pd.Index([f"track{i:04d}" for i in range(n)], name="trackId"),
    ).astype(np.float32)


@pytest.fixture(scope="session")
def tracks() -> pd.DataFrame:
    """Track features with a string index (track ids), as a playlist scores them."""
    frame = _frame(300, seed=1)
    frame.iloc[5, 1] = np.nan  # a missing value takes the tree's default branch
    return frame


@pytest.fixture(scope="session")
def regressor(tracks):
    """A small XGBoost regression booster with named features (depth 3, 12 rounds)."""
    import xgboost as xgb

    train = _frame(400, seed=0)
    y = (
        3 * train["energy"]
        - 2 * train["valence"] ** 2
        + 0.02 * train["tempo"]
        + 0.5 * train["genre_Pop"]
        + np.random.default_rng(2).normal(0, 0.1, len(train))
    )
    dtrain = xgb.DMatrix(train, label=y)
    return xgb.train({"max_depth": 3, "eta": 0.3, "nthread": 2}, dtrain, num_boost_round=12)


@pytest.fixture(scope="session")
def classifier():
    """A three-class multi:softprob model through the scikit-learn API, no feature names."""
    import xgboost as xgb

    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    model = xgb.XGBClassifier(n_estimators=6, max_depth=2, n_jobs=2)
    model.fit(X, y)
    return model, X


@pytest.fixture(scope="session")
def shap_module():
    return import_shap()
