#include "cli.hpp"

#include <vmrt/image/guest_image.hpp>
#include <vmrt/vm_manager.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <charconv>
#include <fstream>
#include <iostream>
#include <sstream>

namespace vmrt::cli {
namespace {

namespace asio = boost::asio;

struct run_options {
    bool json = false;
    bool stop_when_ready = false;
    std::chrono::seconds stop_timeout{30};
    std::filesystem::path state_dir;
    std::vector<std::string> spec_files;  ///< one VM each; all run at once, in one manager
    std::optional<backend_kind> backend;  ///< --backend: overrides the spec's
};

std::optional<run_options> parse_run_args(const std::vector<std::string>& args) {
    run_options o;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        auto value = [&]() -> std::optional<std::string> {
            if (i + 1 >= args.size()) return std::nullopt;
            return args[++i];
        };
        if (a == "--json")
            o.json = true;
        else if (a == "--stop-when-ready")
            o.stop_when_ready = true;
        else if (a == "--stop-timeout") {
            auto v = value();
            unsigned seconds = 0;
            if (!v || std::from_chars(v->data(), v->data() + v->size(), seconds).ec != std::errc{}) {
                std::cerr << "vmrt run: --stop-timeout needs a number of seconds\n";
                return std::nullopt;
            }
            o.stop_timeout = std::chrono::seconds(seconds);
        } else if (a == "--backend") {
            o.backend = backend_option(args, i, "run");
            if (!o.backend) return std::nullopt;
        } else if (a == "--state-dir") {
            auto v = value();
            if (!v) {
                std::cerr << "vmrt run: --state-dir needs a directory\n";
                return std::nullopt;
            }
            o.state_dir = *v;
        } else if (!a.empty() && a[0] == '-') {
            std::cerr << "vmrt run: unknown option " << a << "\n";
            return std::nullopt;
        } else {
            o.spec_files.push_back(a);
        }
    }
    if (o.spec_files.empty()) {
        std::cerr << "vmrt run: missing SPEC.json\n";
        return std::nullopt;
    }
    return o;
}

void print_diagnostics(const diagnostics& d) {
    if (!d.field.empty()) std::cerr << "  field: " << d.field << "\n";
    if (!d.vmm_stderr_tail.empty()) std::cerr << "  VMM output:\n" << d.vmm_stderr_tail << "\n";
    for (auto& l : d.serial_tail) std::cerr << "  console: " << l << "\n";
}

// The boot timeline printed at Ready: spawn → VMM up → first console line → ready.
class boot_timeline {
public:
    void record(const vm_event& ev) {
        if (ev.kind == event_kind::state_changed && std::holds_alternative<state::starting>(ev.state))
            start_ = ev.time;
        if (ev.kind == event_kind::note && ev.reason.find("started as pid") != std::string::npos)
            spawned_ = ev.time;
        if (ev.kind == event_kind::state_changed && std::holds_alternative<state::running>(ev.state) &&
            !spawned_)
            spawned_ = ev.time;
        if (ev.kind == event_kind::note && ev.reason.find("is up") != std::string::npos) vmm_up_ = ev.time;
        if (ev.kind == event_kind::note && ev.reason == "first console output") console_ = ev.time;
        if (ev.kind == event_kind::state_changed && std::holds_alternative<state::ready>(ev.state))
            ready_ = ev.time;
    }
    std::string summary() const {
        std::string out = "timeline:";
        auto add = [&](const char* what, const std::optional<std::chrono::system_clock::time_point>& t) {
            if (!t || !start_) return;
            auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*t - *start_).count();
            out += std::string(" ") + what + " +" + std::to_string(ms) + " ms";
        };
        add("spawn", spawned_);
        add("vmm-up", vmm_up_);
        add("first-console-line", console_);
        add("ready", ready_);
        return out;
    }

private:
    std::optional<std::chrono::system_clock::time_point> start_, spawned_, vmm_up_, console_, ready_;
};

// Reads and validates the spec. A direct-boot spec without a kernel (and without an initramfs)
// boots the project's default guest, built on first use and then taken from its cache.
vm_spec read_spec_with_default_guest(const std::filesystem::path& file, bool quiet) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw error(make_error_code(errc::invalid_spec), {.message = "cannot read " + file.string()});
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = parse_spec_json(text.str(), std::filesystem::absolute(file).parent_path());
    if (!parsed)
        throw error(make_error_code(errc::invalid_spec),
                    {.message = (parsed.error().field.empty() ? "" : parsed.error().field + ": ") +
                                parsed.error().message,
                     .field = parsed.error().field});
    vm_spec spec = std::move(*parsed);
    if (spec.boot == boot_mode::direct && spec.kernel.empty() && !spec.initramfs) {
        image::guest_build_options o;
        if (!quiet)
            o.progress = [](std::string line) {
                std::cerr << "vmrt: default guest: " << line << "\n";
            };
        auto guest = image::build_default_guest(o);
        if (!quiet)
            std::cerr << "vmrt: default guest " << guest.kernel_version
                      << (guest.reused ? " (cached)" : " (built)") << ": " << guest.directory.string()
                      << "\n";
        spec.kernel = guest.kernel;
        spec.initramfs = guest.initramfs;
    }
    auto problems = validate_spec(spec);
    if (!problems.empty()) {
        std::string message;
        for (auto& p : problems) message += (p.field.empty() ? "" : p.field + ": ") + p.message + "\n";
        throw error(make_error_code(errc::invalid_spec),
                    {.message = message, .field = problems.front().field});
    }
    return spec;
}

// Runs one VM to its end: prints events, turns the first Ctrl-C into a graceful stop and the
// second into a kill. Returns the exit code.
asio::awaitable<int> supervise(vm_manager& manager, vm_spec spec, const run_options& opts) {
    auto ex = co_await asio::this_coro::executor;
    auto events = manager.subscribe(ex);
    const std::string name = spec.name;

    // Armed before the start, so that a Ctrl-C during the launch stops the VM instead of killing
    // vmrt (the VMM would then die by its parent-death signal, without a graceful stop).
    asio::signal_set signals(ex, SIGINT, SIGTERM);
    int interrupts = 0;
    bool stop_sent = false;
    std::function<void()> arm_signals = [&] {
        signals.async_wait([&](error_code ec, int) {
            if (ec) return;
            if (++interrupts == 1) {
                std::cerr << "vmrt: stopping " << name << " (power button; again to kill)\n";
                manager.async_stop(name, opts.stop_timeout, asio::detached);
            } else {
                std::cerr << "vmrt: killing " << name << "\n";
                manager.async_kill(name, asio::detached);
            }
            arm_signals();
        });
    };
    arm_signals();

    auto [start_ec, info] =
        co_await manager.async_start(std::move(spec), asio::as_tuple(asio::use_awaitable));
    int exit_status = exit_ok;
    if (start_ec) {
        std::cerr << "vmrt: cannot start " << name << ": " << start_ec.message();
        if (!info.diag.message.empty()) std::cerr << ": " << info.diag.message;
        std::cerr << "\n";
        print_diagnostics(info.diag);
        exit_status = start_ec == errc::invalid_spec || start_ec == errc::unsupported ? exit_invalid_spec
                                                                                      : exit_start_failed;
    }

    boot_timeline timeline;
    for (;;) {
        // After a failed start the queue still holds its events; drain them without waiting.
        std::optional<vm_event> ev;
        if (start_ec) {
            ev = events.try_next();
            if (!ev) break;
        } else {
            auto [ec, next] = co_await events.async_next(asio::as_tuple(asio::use_awaitable));
            if (ec) break;
            ev = std::move(next);
        }
        if (ev->vm != name) continue;
        std::cout << (opts.json ? format_event_json(*ev) : format_event_line(*ev)) << std::endl;
        timeline.record(*ev);
        if (!opts.json && std::holds_alternative<state::ready>(ev->state) &&
            ev->kind == event_kind::state_changed)
            std::cout << timeline.summary() << std::endl;
        if (ev->kind != event_kind::state_changed) continue;
        if (opts.stop_when_ready && !stop_sent && std::holds_alternative<state::ready>(ev->state)) {
            stop_sent = true;
            manager.async_stop(name, opts.stop_timeout, asio::detached);
        }
        if (auto* f = std::get_if<state::failed>(&ev->state)) {
            if (!start_ec) {
                for (auto& l : f->serial_tail) std::cerr << "  console: " << l << "\n";
                exit_status = exit_vm_failed;
            }
            break;
        }
        if (std::holds_alternative<state::stopped>(ev->state)) break;
    }
    signals.cancel();
    co_return exit_status;
}

}  // namespace

int run_command(const std::vector<std::string>& args) {
    auto opts = parse_run_args(args);
    if (!opts) return exit_usage;
    std::vector<vm_spec> specs;
    for (const auto& file : opts->spec_files) {
        try {
            specs.push_back(read_spec_with_default_guest(file, opts->json));
            if (opts->backend) specs.back().backend = *opts->backend;
        } catch (const error& e) {
            if (e.code() != errc::invalid_spec) {
                std::cerr << "vmrt: cannot prepare the default guest: " << e.what() << "\n";
                print_diagnostics(e.diag());
                return exit_start_failed;
            }
            std::cerr << "vmrt: invalid spec " << file << ":\n" << e.what() << "\n";
            return exit_invalid_spec;
        }
    }

    // One manager for all the VMs: NICs naming the same switch network share it.
    asio::io_context ctx;
    manager_options mopts;
    mopts.state_dir = opts->state_dir;
    vm_manager manager(ctx.get_executor(), mopts);
    int result = exit_ok;
    for (auto& spec : specs) {
        asio::co_spawn(ctx, supervise(manager, std::move(spec), *opts), [&](std::exception_ptr e, int code) {
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    std::cerr << "vmrt: " << ex.what() << "\n";
                }
                code = exit_vm_failed;
            }
            // The worst outcome of all the VMs is the command's (exit codes grow with severity).
            result = std::max(result, code);
        });
    }
    ctx.run();
    return result;
}

}  // namespace vmrt::cli
