"""Schema migrations, applied in order on open. Append; never edit a released step."""

SQLITE_MIGRATIONS: list[str] = [
    # 1: the whole model
    """
    CREATE TABLE requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        agent TEXT NOT NULL,
        tool TEXT NOT NULL,
        args TEXT NOT NULL,
        summary TEXT,
        context TEXT,
        risk TEXT NOT NULL,
        risk_rank INTEGER NOT NULL,
        confidence INTEGER,
        policy_reason TEXT,
        irreversible INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL,
        decided_at REAL,
        decided_by TEXT,
        decision_reason TEXT,
        edited_args TEXT,
        idempotency_key TEXT UNIQUE,
        required_approvals INTEGER NOT NULL DEFAULT 1,
        approvals TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX requests_by_status ON requests(status, risk_rank DESC, id DESC);
    CREATE INDEX requests_pending_deadline ON requests(expires_at) WHERE status = 'pending';
    CREATE INDEX requests_by_agent ON requests(agent, id);

    CREATE TABLE escalations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        agent TEXT NOT NULL,
        message TEXT NOT NULL,
        context TEXT,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        request_id INTEGER
    );
    CREATE INDEX escalations_by_status ON escalations(status, updated_at);
    CREATE TABLE escalation_messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        escalation_id INTEGER NOT NULL REFERENCES escalations(id),
        author TEXT NOT NULL,
        role TEXT NOT NULL,
        text TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX escalation_messages_by_thread ON escalation_messages(escalation_id, id);

    CREATE TABLE reviews (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        agent TEXT NOT NULL,
        tool TEXT NOT NULL,
        args TEXT NOT NULL,
        result TEXT NOT NULL,
        result_length INTEGER NOT NULL,
        created_at REAL NOT NULL,
        reviewed INTEGER NOT NULL DEFAULT 0,
        verdict TEXT,
        reviewer TEXT,
        reviewed_at REAL,
        note TEXT,
        request_id INTEGER
    );
    CREATE INDEX reviews_queue ON reviews(reviewed, id DESC);
    CREATE INDEX reviews_by_tool ON reviews(tool, id);
    CREATE INDEX reviews_by_agent ON reviews(agent, id);
    CREATE INDEX reviews_by_time ON reviews(created_at);

    CREATE TABLE capabilities (
        tool TEXT NOT NULL,
        agent TEXT NOT NULL DEFAULT '',
        data TEXT NOT NULL,
        PRIMARY KEY (tool, agent)
    );
    CREATE TABLE stage_changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tool TEXT NOT NULL,
        agent TEXT NOT NULL DEFAULT '',
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        from_stage TEXT,
        to_stage TEXT NOT NULL,
        reason TEXT,
        forced INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX stage_changes_by_tool ON stage_changes(tool, agent, id);
    CREATE TABLE rules (
        position INTEGER PRIMARY KEY,
        data TEXT NOT NULL
    );

    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        actor TEXT NOT NULL,
        payload TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX events_by_subject ON events(subject, seq);
    """,
    # 2: API tokens for the shared server (hashes only)
    """
    CREATE TABLE tokens (
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL,
        created_by TEXT,
        revoked_at REAL
    );
    CREATE UNIQUE INDEX tokens_active_name ON tokens(name) WHERE revoked_at IS NULL;
    """,
]
