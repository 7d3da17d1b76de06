"""The endpoint's inference handler (runs inside the XGBoost serving container)."""
