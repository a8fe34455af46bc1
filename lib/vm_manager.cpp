#include "hv/ch_driver.hpp"
#include "hv/fake_driver.hpp"
#include "hv/qemu_driver.hpp"
#if defined(__APPLE__)
#include "hv/apple_vz/vz_driver.hpp"
#endif
#include "vm_actor.hpp"
#include "vm_manager_ops.hpp"

#include <vmrt/io/with_timeout.hpp>
#include <vmrt/vm_manager.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace vmrt {

namespace asio = boost::asio;
using detail::immediate;
using detail::run_vm_op;
using std::chrono::steady_clock;

error_code detail::exception_to_error(std::exception_ptr e) noexcept {
    try {
        std::rethrow_exception(e);
    } catch (const boost::system::system_error& se) {
        return se.code();
    } catch (const std::system_error& se) {
        return {se.code().value(), boost::system::generic_category()};
    } catch (...) {
        return make_error_code(errc::internal);
    }
}

namespace {

std::filesystem::path default_state_dir() {
    if (const char* d = std::getenv("VMRT_STATE_DIR"); d && *d) return d;
    if (const char* d = std::getenv("XDG_RUNTIME_DIR"); d && *d) return std::filesystem::path(d) / "vmrt";
    if (::geteuid() == 0) return "/run/vmrt";
    return std::filesystem::temp_directory_path() / ("vmrt-" + std::to_string(::geteuid()));
}

}  // namespace

vm_manager::vm_manager(executor_type ex, manager_options opts)
    : ex_(std::move(ex)), opts_(std::move(opts)),
      shared_(std::make_shared<detail::manager_shared>(opts_.event_queue_capacity)) {
    if (opts_.state_dir.empty()) opts_.state_dir = default_state_dir();
    if (opts_.image_store.empty()) opts_.image_store = opts_.state_dir / "images";
    if (auto guest = hv::find_fake_guest_program())
        drivers_[backend_kind::fake] = hv::make_fake_driver(*guest);
    if (hv::find_qemu()) drivers_[backend_kind::qemu] = hv::make_qemu_driver();
    if (hv::find_cloud_hypervisor())
        drivers_[backend_kind::cloud_hypervisor] = hv::make_cloud_hypervisor_driver();
#if defined(__APPLE__)
    // Virtualization.framework is part of macOS (the driver refuses what the running version lacks).
    // Elsewhere there is no apple-vz backend; tests register one over the simulated framework.
    drivers_[backend_kind::apple_vz] = hv::make_apple_vz_driver();
#endif
}

vm_manager::~vm_manager() {
    std::lock_guard lock(mutex_);
    for (auto& [name, actor] : actors_) actor->abandon();
}

void vm_manager::set_driver(backend_kind kind, std::shared_ptr<driver> d) {
    std::lock_guard lock(mutex_);
    drivers_[kind] = std::move(d);
}

std::shared_ptr<driver> vm_manager::find_driver(backend_kind kind, std::string* why_not) const {
    std::lock_guard lock(mutex_);
    if (kind == backend_kind::automatic) {
        // The platform default: Apple's Virtualization.framework on macOS; elsewhere Cloud
        // Hypervisor when installed, else QEMU.
        if (auto it = drivers_.find(backend_kind::automatic); it != drivers_.end()) return it->second;
#if defined(__APPLE__)
        constexpr backend_kind preferred[] = {backend_kind::apple_vz, backend_kind::qemu};
#else
        constexpr backend_kind preferred[] = {backend_kind::cloud_hypervisor, backend_kind::qemu};
#endif
        for (auto k : preferred)
            if (auto it = drivers_.find(k); it != drivers_.end()) return it->second;
        if (why_not)
            *why_not = "no hypervisor backend is available for backend \"auto\" (install qemu-system-x86 or "
                       "cloud-hypervisor)";
        return nullptr;
    }
    if (auto it = drivers_.find(kind); it != drivers_.end()) return it->second;
    if (why_not) {
        *why_not = "backend \"" + std::string(to_string(kind)) + "\" is not available";
        if (kind == backend_kind::fake) *why_not += " (vmrt-fake-guest not found; set VMRT_FAKE_GUEST)";
    }
    return nullptr;
}

boost::system::result<capability_set> vm_manager::capabilities(backend_kind kind) const {
    if (auto d = find_driver(kind)) return d->capabilities();
    return make_error_code(errc::unsupported);
}

std::shared_ptr<detail::vm_actor> vm_manager::find(const std::string& name) const {
    std::lock_guard lock(mutex_);
    auto it = actors_.find(name);
    return it == actors_.end() ? nullptr : it->second;
}

std::optional<vm_state> vm_manager::state(const std::string& name) const {
    if (auto a = find(name)) return a->snapshot().state;
    return std::nullopt;
}

std::optional<vm_info> vm_manager::info(const std::string& name) const {
    if (auto a = find(name)) return a->snapshot();
    return std::nullopt;
}

std::vector<vm_info> vm_manager::list() const {
    std::vector<std::shared_ptr<detail::vm_actor>> actors;
    {
        std::lock_guard lock(mutex_);
        for (auto& [name, a] : actors_) actors.push_back(a);
    }
    std::vector<vm_info> out;
    for (auto& a : actors) out.push_back(a->snapshot());
    return out;
}

error_code vm_manager::remove(const std::string& name) {
    std::shared_ptr<detail::vm_actor> actor;
    {
        std::lock_guard lock(mutex_);
        auto it = actors_.find(name);
        if (it == actors_.end()) return make_error_code(errc::not_found);
        if (!is_terminal(it->second->snapshot().state)) return make_error_code(errc::invalid_state);
        actor = it->second;
        actors_.erase(it);
    }
    std::error_code ec;
    std::filesystem::remove_all(actor->snapshot().run_dir, ec);
    return {};
}

io::subscription<vm_event> vm_manager::subscribe(executor_type ex) const {
    return shared_->channel.subscribe(std::move(ex));
}

void vm_manager::start_impl(vm_spec spec, info_handler h) {
    start_vm(std::move(spec), {}, std::nullopt, std::move(h));
}

void vm_manager::restore_impl(std::filesystem::path dir, info_handler h) {
    auto fail = [&](errc code, std::string message) {
        vm_info failed;
        failed.diag.message = std::move(message);
        detail::run_op<vm_info>(ex_, immediate(make_error_code(code), std::move(failed)), std::move(h));
    };
    std::ifstream in(dir / "vm.json", std::ios::binary);
    if (!in) return fail(errc::not_found, "no snapshot in " + dir.string() + " (vm.json missing)");
    std::stringstream text;
    text << in.rdbuf();
    error_code ec;
    auto meta = boost::json::parse(text.str(), ec);
    if (ec || !meta.is_object() || !meta.as_object().contains("spec"))
        return fail(errc::invalid_spec, "malformed " + (dir / "vm.json").string());
    auto spec = parse_spec_json(boost::json::serialize(meta.at("spec")), dir);
    if (!spec) return fail(errc::invalid_spec, spec.error().field + ": " + spec.error().message);
    std::optional<std::string> ready_ip;
    if (auto* ip = meta.as_object().if_contains("ready_ip"); ip && ip->is_string())
        ready_ip = std::string(ip->as_string());
    start_vm(std::move(*spec), std::move(dir), std::move(ready_ip), std::move(h));
}

void vm_manager::snapshot_impl(std::string name, std::filesystem::path dir, state_handler h) {
    run_vm_op<vm_state>(ex_, find(name), vm_state{}, std::move(h),
                        [d = std::move(dir)](detail::vm_actor& a) { return a.save_snapshot(d); });
}

void vm_manager::start_vm(vm_spec spec, std::filesystem::path restore_dir,
                          std::optional<std::string> ready_ip, info_handler h) {
    auto fail = [&](errc code, std::string message, std::string field = {}) {
        vm_info failed;
        failed.name = spec.name;
        failed.diag.message = std::move(message);
        failed.diag.field = std::move(field);
        detail::run_op<vm_info>(
            ex_,
            [](error_code ec, vm_info i) -> asio::awaitable<std::pair<error_code, vm_info>> {
                co_return std::pair{ec, std::move(i)};
            }(make_error_code(code), std::move(failed)),
            std::move(h));
    };
    if (is_valid_vm_name(spec.name) && is_valid_vm_name(spec.namespace_)) {
        // The VM's run directory holds its default console log (and a restored VM's log, whose
        // directory may have been removed with the VM that was saved): it must exist to validate.
        auto run_dir = opts_.state_dir / spec.namespace_ / spec.name;
        std::error_code ec;
        std::filesystem::create_directories(run_dir, ec);
        if (ec)
            return fail(errc::vmm_start_failed, "cannot create " + run_dir.string() + ": " + ec.message(),
                        "serial_log");
        if (spec.serial_log.empty()) spec.serial_log = run_dir / "serial.log";
    }
    if (auto problems = validate_spec(spec); !problems.empty())
        return fail(errc::invalid_spec, problems.front().message, problems.front().field);
    std::string why_not;
    auto drv = find_driver(spec.backend, &why_not);
    if (!drv) return fail(errc::unsupported, why_not);
    if (auto refused = drv->check_spec(spec))
        return fail(errc::unsupported, refused->message, refused->field);

    std::shared_ptr<detail::vm_actor> actor;
    {
        std::lock_guard lock(mutex_);
        auto it = actors_.find(spec.name);
        if (it != actors_.end() && !is_terminal(it->second->snapshot().state)) {
            // Reserve-before-launch: a second start of the same name fails here, never races.
            return fail(errc::already_exists,
                        "VM \"" + spec.name + "\" is already " +
                            std::string(state_name(it->second->snapshot().state)),
                        "name");
        }
        std::shared_ptr<detail::nic_attachments> nics;
        try {
            nics = attach_switch_ports(spec);
        } catch (const error& e) {
            return fail(errc::vmm_start_failed, e.diag().message.empty() ? e.what() : e.diag().message,
                        "networks");
        }
        auto run_dir = opts_.state_dir / spec.namespace_ / spec.name;
        actor = std::make_shared<detail::vm_actor>(
            ex_, std::move(spec), drv, run_dir, opts_, shared_,
            detail::restore_point{std::move(restore_dir), std::move(ready_ip)});
        if (nics) actor->attach(std::move(nics));
        actors_[actor->name()] = actor;
    }
    detail::run_op<vm_info>(
        actor->strand(),
        [](std::shared_ptr<detail::vm_actor> a) -> asio::awaitable<std::pair<error_code, vm_info>> {
            try {
                vm_info started = co_await a->start();  // named: see on_actor (vm_manager_ops.hpp)
                co_return std::pair{error_code{}, std::move(started)};
            } catch (const error& e) {
                auto info = a->snapshot();
                info.diag = e.diag();
                if (info.diag.message.empty()) info.diag.message = e.what();
                co_return std::pair{e.code(), std::move(info)};
            }
        }(actor),
        std::move(h));
}

void vm_manager::stop_impl(std::string name, steady_clock::duration deadline, stop_handler h) {
    run_vm_op<stop_outcome>(ex_, find(name), stop_outcome::already_stopped, std::move(h),
                            [deadline](detail::vm_actor& a) { return a.stop(deadline); });
}

void vm_manager::kill_impl(std::string name, stop_handler h) {
    run_vm_op<stop_outcome>(ex_, find(name), stop_outcome::already_stopped, std::move(h),
                            [](detail::vm_actor& a) { return a.kill(); });
}

void vm_manager::balloon_impl(std::string name, std::uint64_t target_mib,
                              asio::any_completion_handler<void(error_code, std::uint64_t)> h) {
    run_vm_op<std::uint64_t>(ex_, find(name), 0, std::move(h),
                             [target_mib](detail::vm_actor& a) { return a.resize_balloon(target_mib); });
}

void vm_manager::vcpus_impl(std::string name, std::uint32_t count,
                            asio::any_completion_handler<void(error_code, std::uint32_t)> h) {
    run_vm_op<std::uint32_t>(ex_, find(name), 0, std::move(h),
                             [count](detail::vm_actor& a) { return a.resize_vcpus(count); });
}

void vm_manager::pause_impl(std::string name, bool pause, state_handler h) {
    run_vm_op<vm_state>(ex_, find(name), vm_state{}, std::move(h),
                        [pause](detail::vm_actor& a) { return a.set_paused(pause); });
}

void vm_manager::wait_ready_impl(std::vector<std::string> names, steady_clock::duration deadline,
                                 infos_handler h) {
    // Subscribe before reading the states, so that no change can slip between the two.
    auto body =
        [](vm_manager* self, std::vector<std::string> wanted, steady_clock::duration limit,
           io::subscription<vm_event> sub) -> asio::awaitable<std::pair<error_code, std::vector<vm_info>>> {
        const auto until = steady_clock::now() + limit;
        for (;;) {
            std::vector<vm_info> infos;
            bool all_ready = true;
            for (auto& n : wanted) {
                auto i = self->info(n);
                if (!i) co_return std::pair{make_error_code(errc::not_found), std::vector<vm_info>{}};
                if (std::holds_alternative<state::failed>(i->state))
                    co_return std::pair{make_error_code(errc::vmm_crashed), std::vector<vm_info>{*i}};
                if (std::holds_alternative<state::stopped>(i->state))
                    co_return std::pair{make_error_code(errc::invalid_state), std::vector<vm_info>{*i}};
                all_ready = all_ready && std::holds_alternative<state::ready>(i->state);
                infos.push_back(std::move(*i));
            }
            if (all_ready) co_return std::pair{error_code{}, std::move(infos)};
            auto now = steady_clock::now();
            if (now >= until) co_return std::pair{make_error_code(errc::timeout), std::move(infos)};
            auto [ec, ev] = co_await io::with_timeout(sub.async_next(asio::deferred), until - now);
            if (ec == errc::timeout) co_return std::pair{ec, std::move(infos)};
            if (ec) co_return std::pair{ec, std::move(infos)};
        }
    };
    detail::run_op<std::vector<vm_info>>(ex_, body(this, std::move(names), deadline, subscribe(ex_)),
                                         std::move(h));
}

void vm_manager::shutdown_impl(steady_clock::duration deadline, count_handler h) {
    std::vector<std::shared_ptr<detail::vm_actor>> actors;
    {
        std::lock_guard lock(mutex_);
        for (auto& [name, a] : actors_)
            if (!is_terminal(a->snapshot().state)) actors.push_back(a);
    }
    auto body = [](std::vector<std::shared_ptr<detail::vm_actor>> all,
                   steady_clock::duration d) -> asio::awaitable<std::pair<error_code, std::size_t>> {
        // Every stop runs on its own actor's strand at once; a timer is the join point.
        auto ex = co_await asio::this_coro::executor;
        auto remaining = std::make_shared<std::size_t>(all.size());
        auto first_error = std::make_shared<error_code>();
        asio::steady_timer done(ex, steady_clock::time_point::max());
        for (auto& a : all) {
            asio::co_spawn(a->strand(), a->stop(d),
                           [&done, remaining, first_error, ex](std::exception_ptr e, stop_outcome) {
                               asio::post(ex, [&done, remaining, first_error, e] {
                                   if (e && !*first_error) *first_error = detail::exception_to_error(e);
                                   if (--*remaining == 0) done.cancel();
                               });
                           });
        }
        while (*remaining > 0) {
            auto [ec] = co_await done.async_wait(asio::as_tuple(asio::use_awaitable));
            (void)ec;
        }
        co_return std::pair{*first_error, all.size()};
    };
    // A strand: the completions of the stops below and the join timer must not race.
    detail::run_op<std::size_t>(asio::make_strand(ex_), body(std::move(actors), deadline), std::move(h));
}

}  // namespace vmrt
