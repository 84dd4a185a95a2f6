#!/bin/sh
# A fake agent CLI for tests. Installed under the names claude/codex/gemini (or used as a
# `command` agent); its behaviour is driven by environment variables:
#   FAKE_STDIN_COPY=FILE     copy stdin (the prompt) to FILE
#   FAKE_ENV_DUMP=FILE       write the environment to FILE
#   FAKE_ARGV_DUMP=FILE      append `<program name> <args…>` (one line per run) to FILE
#   FAKE_STDOUT=TEXT         print TEXT on stdout     FAKE_STDERR=TEXT  print TEXT on stderr
#   FAKE_WRITE_OUTPUT=TEXT   write TEXT to $JRUN_RUN_FOLDER/output.md
#   FAKE_IGNORE_TERM=1       ignore SIGTERM (also in the children started below)
#   FAKE_GRANDCHILD=FILE     start a background `sleep 30` and write its pid to FILE
#   FAKE_SETSID_CHILD=FILE   start `sleep 300` in a session of its own (as claude's Bash tool and
#                            gemini's shell tool do) and write its pid to FILE
#   FAKE_SPAWN_CHILD=AGENT   start a child run: run-agent job --agent AGENT --prompt …
#   FAKE_SLEEP=SECONDS       sleep that long
#   FAKE_TICK_UNTIL=FILE     print `tick N` (stdout) and `warn N` (stderr) every 0.1 s until FILE exists
#                            (or its directory is gone, or 2 minutes passed)
#   FAKE_DONE_AFTER=N        create $JRUN_TASK_FOLDER/DONE on the N-th run of the task
#   FAKE_EXIT=CODE           exit with CODE (default 0)
if [ "$1" = "--version" ]; then
    echo "fake-agent 1.2.3"
    exit 0
fi
if [ -n "$FAKE_STDIN_COPY" ]; then cat > "$FAKE_STDIN_COPY"; fi
if [ -n "$FAKE_ENV_DUMP" ]; then env > "$FAKE_ENV_DUMP"; fi
if [ -n "$FAKE_ARGV_DUMP" ]; then printf '%s\n' "$(basename "$0") $*" >> "$FAKE_ARGV_DUMP"; fi
if [ -n "$FAKE_STDOUT" ]; then printf '%s\n' "$FAKE_STDOUT"; fi
if [ -n "$FAKE_STDERR" ]; then printf '%s\n' "$FAKE_STDERR" >&2; fi
if [ -n "$FAKE_WRITE_OUTPUT" ]; then printf '%s\n' "$FAKE_WRITE_OUTPUT" > "$JRUN_RUN_FOLDER/output.md"; fi
if [ "$FAKE_IGNORE_TERM" = "1" ]; then trap '' TERM; fi
if [ -n "$FAKE_GRANDCHILD" ]; then
    sleep 30 &
    echo $! > "$FAKE_GRANDCHILD.tmp" && mv "$FAKE_GRANDCHILD.tmp" "$FAKE_GRANDCHILD"
fi
if [ -n "$FAKE_SETSID_CHILD" ]; then
    setsid sh -c 'echo $$ > "$0.tmp" && mv "$0.tmp" "$0" && exec sleep 300' "$FAKE_SETSID_CHILD" \
        </dev/null >/dev/null 2>&1 &
    while [ ! -e "$FAKE_SETSID_CHILD" ]; do sleep 0.02; done
fi
if [ -n "$FAKE_SPAWN_CHILD" ]; then
    # Start a child run the way the prompt preamble says (same agent, JRUN_* defaults).
    FAKE_SPAWN_CHILD= run-agent job --agent "$FAKE_SPAWN_CHILD" --prompt "child task" || exit 12
fi
if [ -n "$FAKE_SLEEP" ]; then sleep "$FAKE_SLEEP"; fi
if [ -n "$FAKE_TICK_UNTIL" ]; then
    n=0
    # Also ends when the test's temp dir is gone (a failed test never writes the file) or
    # after 2 minutes, so no ticking agent outlives its test.
    while [ ! -e "$FAKE_TICK_UNTIL" ] && [ -d "$(dirname "$FAKE_TICK_UNTIL")" ] && [ "$n" -lt 1200 ]; do
        n=$((n + 1))
        echo "tick $n"
        echo "warn $n" >&2
        sleep 0.1
    done
fi
if [ -n "$FAKE_DONE_AFTER" ]; then
    count_file="$JRUN_TASK_FOLDER/fake-run-count"
    count=$(( $(cat "$count_file" 2>/dev/null || echo 0) + 1 ))
    echo "$count" > "$count_file"
    if [ "$count" -ge "$FAKE_DONE_AFTER" ]; then touch "$JRUN_TASK_FOLDER/DONE"; fi
fi
exit "${FAKE_EXIT:-0}"
