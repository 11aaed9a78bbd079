# The storage facade's tests (included by tests/CMakeLists.txt).
#   storage_test      RaftStorage: round trips (plaintext/encrypted, inline/
#                     streamed snapshots), snapshot fall back, a missing key,
#                     DEK rotation driven by the snapshot callback, a crash at
#                     every write step of a rotation, GC and keys, swarmkit
#                     PR #1766 at the facade level
sealwal_test(storage_test DEPS sealwal::storage sealwal::env sealwal_fault_injection TIMEOUT 900)
#   store_cli_test    `sealwal store init|gen|verify|inspect|rotate` (SIGKILL
#                     mid-gen, rotate while gen runs, --help)
sealwal_test(store_cli_test TIMEOUT 600)
#   store_migrate_test  `sealwal store migrate` and storage::Migrate: etcd's
#                     fixture and a generated store round trip (identical
#                     verify/dump output and segments), a crash at every write
#                     step both ways, wrong keys / torn tail / a writer refused
sealwal_test(store_migrate_test DEPS sealwal::storage sealwal::env sealwal_fault_injection
             TIMEOUT 900)
#   backup_test       sealwal/backup: backup/restore round trips (encrypted,
#                     plaintext, streamed snapshots), backups while a writer
#                     appends, a DEK change during the copy, a .snap without
#                     its WAL record, refusals leaving the target untouched,
#                     redaction, the container format's checks
sealwal_test(backup_test DEPS sealwal::backup sealwal::storage sealwal::env TIMEOUT 600)
#   store_backup_cli_test  `sealwal store backup|restore` as the binary: a
#                     backup while `store gen` appends, quiet round trips to
#                     the same verify output, refusals, inspect's
#                     key-material lines for every kind of file
sealwal_test(store_backup_cli_test TIMEOUT 600)
#   sealwal_crash_campaign   the reliability campaign (docs/reliability.md,
#                     scripts/crash-campaign.sh): SIGKILLed `store gen`, a
#                     crash / power loss / EIO / ENOSPC at every step of the
#                     facade's workload, a crash at every step of the key
#                     commands and the rotator. Not a gtest binary; ctest
#                     runs its short version (CrashCampaign.Quick).
add_executable(sealwal_crash_campaign crash_campaign.cc)
target_link_libraries(sealwal_crash_campaign PRIVATE sealwal::storage sealwal::pem sealwal::env
  sealwal::base sealwal_fault_injection absl::strings absl::status)
sealwal_warnings(sealwal_crash_campaign)
add_dependencies(sealwal_crash_campaign sealwal)
# Under the sanitizers (several times slower) a smaller sample still runs
# every part.
set(sealwal_campaign_size "")
if(SEALWAL_SANITIZE)
  set(sealwal_campaign_size --trials 4 --steps 30)
endif()
add_test(NAME CrashCampaign.Quick
  COMMAND ${CMAKE_COMMAND} -E env SEALWAL=$<TARGET_FILE:sealwal>
          CRASH_CAMPAIGN=$<TARGET_FILE:sealwal_crash_campaign>
          bash ${PROJECT_SOURCE_DIR}/scripts/crash-campaign.sh --quick ${sealwal_campaign_size})
set_tests_properties(CrashCampaign.Quick PROPERTIES TIMEOUT 300)
