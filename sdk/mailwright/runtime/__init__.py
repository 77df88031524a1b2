"""Runtime shared by every Mailwright process: settings, storage, bus, auth, servers."""
