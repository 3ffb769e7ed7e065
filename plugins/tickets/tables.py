"""The ticket plugin's tables, in its own migration namespace `tickets`.

Times are epoch seconds (UTC); days, weeks and months are cut in the calendar's time
zone when they are measured. A ticket's row carries what the overdue board and the
measures read (its state, deadline, handlers, the times of each step), so they never
have to replay its history; `ticket_events` keeps that history, one row per
transition with its actor, and is the order other plugins replay (`seq` = its id).

Migration versions: 1 is this schema; 2-9 are the workflow's (3: Open311 keys, whistle
types, the whistles' deadlines per call; 4: the overdue board's index), 10-19 the
measures'.
"""

from __future__ import annotations

from daemon.store import Migration

NAME = "tickets"

MIGRATIONS = [
    Migration(
        NAME,
        1,
        """
        CREATE TABLE ticket_departments (
            id TEXT PRIMARY KEY,              -- e.g. "urban-mgmt"
            name TEXT NOT NULL,
            level TEXT NOT NULL CHECK (level IN ('community', 'street', 'district')),
            street TEXT,                      -- the street's grid code, for street-level units
            competent INTEGER NOT NULL DEFAULT 0  -- a district competent department (主管部门)
        );
        CREATE TABLE ticket_categories (
            code TEXT PRIMARY KEY,            -- e.g. "city.litter"; Open311's service_code
            name TEXT NOT NULL,
            grp TEXT,                         -- the major duty category it belongs to
            tier TEXT NOT NULL CHECK (tier IN ('simple', 'coordination', 'hard')),
            department TEXT REFERENCES ticket_departments(id),
            competent TEXT REFERENCES ticket_departments(id),  -- coordination: told at once
            deadline TEXT NOT NULL,           -- "2h" hours, "8wh" working hours, "5wd" working days
            major INTEGER NOT NULL DEFAULT 0, -- a major case: the hall is alerted
            description TEXT,
            keywords TEXT,
            attributes TEXT,                  -- JSON: Open311 service definition attributes
            active INTEGER NOT NULL DEFAULT 1
        );
        CREATE TABLE tickets (
            id INTEGER PRIMARY KEY,           -- Open311's service_request_id
            idem_key TEXT UNIQUE,             -- a source's own id: a repeated report is one ticket
            token TEXT UNIQUE,                -- Open311 token handed out at POST
            channel TEXT NOT NULL,            -- grid_app, resident, hotline, video_ai, media,
                                              -- supervisor, open311, api
            category TEXT NOT NULL REFERENCES ticket_categories(code),
            tier TEXT NOT NULL CHECK (tier IN ('simple', 'coordination', 'hard')),
            major INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL,
            description TEXT,
            address TEXT,
            lon REAL,
            lat REAL,
            grid TEXT,                        -- basic grid code of the point
            community TEXT,
            street TEXT,
            member TEXT,                      -- the grid member on duty (a grid person id)
            department TEXT,                  -- the responsible department
            competent TEXT,                   -- the district competent department, if any
            lead TEXT,                        -- hard cases: the lead department
            handler TEXT,                     -- who holds it now: a person id or a department id
            reporter TEXT,                    -- a grid person id, when the reporter is known
            reporter_name TEXT,
            reporter_contact TEXT,            -- phone or e-mail, as given
            media_url TEXT,
            attributes TEXT,                  -- JSON: answers to the category's attributes
            created_at REAL NOT NULL,         -- collected
            registered_at REAL,
            dispatched_at REAL,               -- first dispatch
            accepted_at REAL,                 -- the handler responded
            reported_at REAL,                 -- last report back
            closed_at REAL,                   -- verified and closed
            evaluated_at REAL,
            done_at REAL,                     -- when it left the open states; NULL while open
            due_at REAL NOT NULL,             -- the deadline (Open311 expected_datetime)
            on_time INTEGER,                  -- at close: closed_at <= due_at
            satisfaction TEXT CHECK (satisfaction IN ('satisfied', 'basic', 'unsatisfied')),
            reminded_at REAL,                 -- the near-deadline reminder went out
            escalation INTEGER NOT NULL DEFAULT 0,  -- overdue supervision level reached (督办)
            reworks INTEGER NOT NULL DEFAULT 0,
            reopens INTEGER NOT NULL DEFAULT 0,
            merged_into INTEGER REFERENCES tickets(id),
            updated_at REAL NOT NULL
        );
        CREATE INDEX tickets_open_due ON tickets(due_at) WHERE done_at IS NULL;
        CREATE INDEX tickets_created ON tickets(created_at);
        CREATE INDEX tickets_updated ON tickets(updated_at);
        CREATE INDEX tickets_place ON tickets(grid, category, created_at);
        CREATE TABLE ticket_parties (          -- every department or person a ticket went to
            ticket INTEGER NOT NULL REFERENCES tickets(id),
            party TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('handler', 'competent', 'lead', 'co', 'member')),
            at REAL NOT NULL,
            PRIMARY KEY (ticket, party, role)
        );
        CREATE INDEX ticket_parties_party ON ticket_parties(party, ticket);
        CREATE TABLE ticket_events (           -- every transition with its actor
            id INTEGER PRIMARY KEY,            -- `seq` for plugins replaying changes
            ticket INTEGER NOT NULL REFERENCES tickets(id),
            at REAL NOT NULL,
            actor TEXT NOT NULL,
            transition TEXT NOT NULL,          -- "collect" for the creation, then workflow's
            from_state TEXT,
            to_state TEXT NOT NULL,
            note TEXT,
            data TEXT                          -- JSON: the transition's arguments
        );
        CREATE INDEX ticket_events_ticket ON ticket_events(ticket, id);
        CREATE TABLE ticket_whistles (         -- 吹哨报到
            id INTEGER PRIMARY KEY,
            ticket INTEGER REFERENCES tickets(id),
            level TEXT NOT NULL CHECK (level IN ('community', 'street', 'district')),
            type TEXT NOT NULL,
            blown_by TEXT NOT NULL,
            blown_at REAL NOT NULL,
            report_by REAL NOT NULL,           -- the departments must report in before this
            state TEXT NOT NULL CHECK (state IN ('open', 'answered', 'escalated', 'closed')),
            escalation INTEGER NOT NULL DEFAULT 0,
            note TEXT
        );
        CREATE INDEX ticket_whistles_open ON ticket_whistles(report_by) WHERE state = 'open';
        CREATE TABLE ticket_whistle_calls (    -- each department named, and when it reported in
            whistle INTEGER NOT NULL REFERENCES ticket_whistles(id),
            department TEXT NOT NULL,
            reported_at REAL,
            reported_by TEXT,
            PRIMARY KEY (whistle, department)
        );
        """,
        "tickets: categories, departments, tickets, parties, history, whistles",
    ),
    Migration(
        NAME,
        2,
        """
        CREATE TABLE ticket_groups (            -- the major duty categories (11大类)
            code TEXT PRIMARY KEY,             -- e.g. "security"
            name TEXT NOT NULL,
            competent TEXT                     -- its district competent department
        );
        -- When the deadline watcher next has something to say about an open ticket (its
        -- reminder, its deadline, the next supervision level): it sleeps until the
        -- smallest, and wakes to exactly the tickets that are due.
        ALTER TABLE tickets ADD COLUMN next_alert_at REAL;
        CREATE INDEX tickets_next_alert ON tickets(next_alert_at)
            WHERE done_at IS NULL AND next_alert_at IS NOT NULL;
        """,
        "tickets: category groups; the deadline watcher's next alert per open ticket",
    ),
    Migration(
        NAME,
        3,
        """
        -- Open311 api_keys: handed to the apps that file reports; only the hash is kept.
        CREATE TABLE ticket_open311_keys (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            hash TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            revoked_at REAL
        );
        -- Each import that changed the categories: Open311 discovery's changeset.
        CREATE TABLE ticket_catalog_changes (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            digest TEXT NOT NULL
        );
        -- The whistle types of each level (吹哨报到), from the categories file.
        CREATE TABLE ticket_whistle_types (
            level TEXT NOT NULL CHECK (level IN ('community', 'street', 'district')),
            code TEXT NOT NULL,
            name TEXT NOT NULL,
            deadline TEXT NOT NULL,            -- report in within this ("2h", "1wd")
            departments TEXT,                  -- JSON: the departments it calls by default
            escalate_to TEXT,                  -- the type at the next level it escalates to
            kinds TEXT,                        -- JSON: [{code, name}] (the street's 46 kinds)
            description TEXT,
            active INTEGER NOT NULL DEFAULT 1,
            PRIMARY KEY (level, code)
        );
        ALTER TABLE ticket_whistles ADD COLUMN kind TEXT;
        ALTER TABLE ticket_whistles ADD COLUMN answered_at REAL;
        -- When the watcher next looks at an open whistle: its report_by, or later when
        -- the calendar could not place the next level's deadline.
        ALTER TABLE ticket_whistles ADD COLUMN next_alert_at REAL;
        CREATE INDEX ticket_whistles_next_alert ON ticket_whistles(next_alert_at)
            WHERE state = 'open' AND next_alert_at IS NOT NULL;
        CREATE INDEX ticket_whistles_ticket ON ticket_whistles(ticket) WHERE ticket IS NOT NULL;
        -- Each call's own deadline: a department called at an escalation has the new
        -- level's; one called at the start keeps the first (one whistle, one assessment).
        ALTER TABLE ticket_whistle_calls ADD COLUMN called_at REAL;
        ALTER TABLE ticket_whistle_calls ADD COLUMN due_at REAL;
        ALTER TABLE ticket_whistle_calls ADD COLUMN note TEXT;
        CREATE INDEX ticket_whistle_calls_due ON ticket_whistle_calls(due_at, department);
        """,
        "tickets: Open311 api_keys, catalog changesets, whistle types and deadlines",
    ),
    Migration(
        NAME,
        4,
        """
        -- The overdue board reads open tickets in deadline order from this index alone,
        -- filtered or not: tickets_open_due with the columns the board filters on (and
        -- done_at, NULL in every entry, so that no filter reads a row of the table).
        CREATE INDEX tickets_open_board
            ON tickets(due_at, department, street, grid, category, done_at)
            WHERE done_at IS NULL;
        DROP INDEX tickets_open_due;
        """,
        "tickets: the overdue board's filters answered from its index of open tickets",
    ),
]
