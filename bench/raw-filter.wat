;; A proxy-wasm HTTP filter written against the ABI (0.2.1) by hand, without any SDK, for
;; bench/filter_overhead.py: the least a proxy-wasm filter can cost in Envoy. What is left is Envoy's
;; and V8's own work per stream (the context, a V8 call per exported callback, and each host call).
;;
;; - empty plugin configuration: does nothing;
;; - any other configuration: reads `x-user-id` and writes its value to `x-affinity-key` (what our
;;   filter does for a header key), with one host call each.
;;
;; Each plugin (root context) keeps its own choice, so one VM serves every use: V8 under valgrind
;; cannot create many VMs. An HTTP context takes its plugin's choice when it is created; both are
;; kept in small tables indexed by context id (modulo 256 plugins and 1,024 streams: enough for the
;; bench's few plugins and connections). Host copies (the header value) go to a bump allocator
;; that starts over at every request's headers.
;; Built by bench/run.sh with wat2wasm (Debian `wabt`).
(module
  (import "env" "proxy_get_header_map_value"
    (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value"
    (func $replace_header (param i32 i32 i32 i32 i32) (result i32)))
  (memory $memory 2)
  (export "memory" (memory $memory))
  ;; Bytes 0-7: where the host writes a returned value's pointer and size. From 1024: a plugin's
  ;; choice by root context id; from 2048: an HTTP context's, by its id (4 bytes each).
  (data (i32.const 16) "x-user-id")
  (data (i32.const 32) "x-affinity-key")
  (global $next_free (mut i32) (i32.const 65536))

  (func (export "proxy_abi_version_0_2_1"))

  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $next_free))
    (global.set $next_free
      (i32.and (i32.add (i32.add (local.get $at) (local.get $size)) (i32.const 7)) (i32.const -8)))
    (local.get $at))

  (func $plugin_slot (param $root_id i32) (result i32)
    (i32.add (i32.const 1024) (i32.shl (i32.and (local.get $root_id) (i32.const 255)) (i32.const 2))))
  (func $stream_slot (param $context_id i32) (result i32)
    (i32.add (i32.const 2048) (i32.shl (i32.and (local.get $context_id) (i32.const 1023)) (i32.const 2))))

  ;; A parent id of 0 is a root context (its choice comes at configure).
  (func (export "proxy_on_context_create") (param $context_id i32) (param $parent_id i32)
    (if (local.get $parent_id)
      (then
        (i32.store (call $stream_slot (local.get $context_id))
          (i32.load (call $plugin_slot (local.get $parent_id)))))))

  (func (export "proxy_on_vm_start") (param $root_id i32) (param $vm_configuration_size i32) (result i32)
    (i32.const 1))

  (func (export "proxy_on_configure") (param $root_id i32) (param $plugin_configuration_size i32) (result i32)
    (i32.store (call $plugin_slot (local.get $root_id))
      (i32.ne (local.get $plugin_configuration_size) (i32.const 0)))
    (i32.const 1))

  ;; Returns 0: Continue. Map type 0: the request headers.
  (func (export "proxy_on_request_headers") (param $context_id i32) (param $headers i32) (param $end_of_stream i32) (result i32)
    (global.set $next_free (i32.const 65536))
    (if (i32.load (call $stream_slot (local.get $context_id)))
      (then
        (if (i32.eqz (call $get_header (i32.const 0) (i32.const 16) (i32.const 9) (i32.const 0) (i32.const 4)))
          (then
            (drop (call $replace_header (i32.const 0) (i32.const 32) (i32.const 14)
              (i32.load (i32.const 0)) (i32.load (i32.const 4))))))))
    (i32.const 0))

  (func (export "proxy_on_response_headers") (param $context_id i32) (param $headers i32) (param $end_of_stream i32) (result i32)
    (i32.const 0))

  (func (export "proxy_on_delete") (param $context_id i32))
)
