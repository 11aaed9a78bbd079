# The encryption component's tests (included by tests/CMakeLists.txt).
#   aead_test                   KATs (RFC 8439, GCM spec), round trips, key types
#   encryption_record_test      EncryptedRecord, AAD binding, multi-key, tampering
#   encryption_nonce_test       10M nonces unique, rotation threshold, 2^32 limit
#   encryption_wal_test         the WAL codec: round trips, swapped/tampered
#                               entries with a fixed CRC chain, wrong keys
#                               modify nothing, etcd's reader walks the framing
#   encryption_cli_test         `sealwal wal gen|dump|verify --dek-file`
#   wal_rotation_test           Wal::SwitchWriteKey: DEK1 -> DEK2 -> DEK3 in one
#                               open WAL; union / newest-only / oldest-only
#                               readers; metadata re-sealed per key; plaintext
#                               switch; a failed switch is sticky
sealwal_test(aead_test DEPS sealwal::encryption)
sealwal_test(encryption_record_test DEPS sealwal::encryption)
sealwal_test(encryption_nonce_test DEPS sealwal::encryption)
sealwal_test(encryption_wal_test DEPS sealwal::walcrypt sealwal::encryption sealwal::wal sealwal::env
  sealwal::base sealwal::proto)
sealwal_test(encryption_cli_test DEPS sealwal::encryption sealwal::base)
sealwal_test(wal_rotation_test DEPS sealwal::walcrypt sealwal::encryption sealwal::wal sealwal::env
  sealwal::base sealwal::proto)
#   encryption_keyring_test     Keyring (write/read keys, SetWriteKey followed by
#                               the WAL codec, missing keys), KeyUsage
#                               reservations, pem::LoadKeyring persisting counts
sealwal_test(encryption_keyring_test DEPS sealwal::walcrypt sealwal::pem sealwal::encryption
  sealwal::wal sealwal::env)
#   log_reader_test             wal::LogReader against Wal::ReadAll, plaintext
#                               and encrypted: overrides, mid-log snapshot,
#                               torn tail, max_bytes, cache, Term without I/O,
#                               out of range, bytes changed after the scan,
#                               write-mode recovery + Save + CompactTo
sealwal_test(log_reader_test DEPS sealwal::walcrypt sealwal::encryption sealwal::wal sealwal::env
  sealwal::base sealwal::proto)
