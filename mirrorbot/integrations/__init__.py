"""Knowledge of the hosting platform (GitHub) lives here and only here."""
