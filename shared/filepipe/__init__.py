"""filepipe: the package every filepipe function installs (config, db, storage, events, auth)."""
