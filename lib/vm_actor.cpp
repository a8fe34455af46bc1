#include "vm_actor.hpp"

#include <vmrt/io/atomic_file.hpp>
#include <vmrt/io/with_timeout.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <fcntl.h>
#include <unistd.h>

namespace vmrt::detail {

namespace asio = boost::asio;
using std::chrono::steady_clock;

void manager_shared::publish(std::string vm, event_kind kind, vm_state state, std::string reason,
                             std::optional<transfer_progress> transfer) {
    std::lock_guard lock(mutex);
    vm_event e;
    e.sequence = ++sequence;
    e.time = std::chrono::system_clock::now();
    e.kind = kind;
    e.vm = std::move(vm);
    e.state = std::move(state);
    e.reason = std::move(reason);
    e.transfer = std::move(transfer);
    channel.publish(e);
}

vm_actor::vm_actor(asio::any_io_executor ex, vm_spec spec, std::shared_ptr<driver> drv,
                   std::filesystem::path run_dir, const manager_options& opts,
                   std::shared_ptr<manager_shared> shared, restore_point restore)
    : strand_(asio::make_strand(ex)), spec_(std::move(spec)), driver_(std::move(drv)),
      run_dir_(std::move(run_dir)), opts_(opts), shared_(std::move(shared)), restore_(std::move(restore)),
      parser_(opts.serial_tail_lines), state_changed_(strand_, steady_clock::time_point::max()) {
    snapshot_.name = spec_.name;
    snapshot_.namespace_ = spec_.namespace_;
    snapshot_.backend = std::string(driver_->name());
    snapshot_.state = state_;
    snapshot_.serial_log = spec_.serial_log;
    snapshot_.run_dir = run_dir_;
}

vm_actor::~vm_actor() = default;

vm_info vm_actor::snapshot() const {
    std::lock_guard lock(snapshot_mutex_);
    return snapshot_;
}

void vm_actor::set_state(vm_state s, std::string reason) {
    state_ = s;
    {
        std::lock_guard lock(snapshot_mutex_);
        snapshot_.state = s;
    }
    shared_->publish(spec_.name, event_kind::state_changed, std::move(s), std::move(reason));
    state_changed_.cancel();  // wake every waiter; the expiry stays at max for the next ones
}

void vm_actor::note(std::string text) {
    shared_->publish(spec_.name, event_kind::note, state_, std::move(text));
}

// Creates (truncates) the serial log so that a ready line of an earlier boot can never count.
static void prepare_serial_log(const std::filesystem::path& file) {
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        throw error(make_error_code(errc::vmm_start_failed),
                    {.message = "cannot create the serial log " + file.string() + ": " + std::strerror(errno),
                     .field = "serial_log"});
    ::close(fd);
}

asio::awaitable<vm_info> vm_actor::start() {
    auto self = shared_from_this();
    set_state(state::starting{}, "start requested (backend " + std::string(driver_->name()) + ")");
    try {
        std::filesystem::create_directories(run_dir_);
        prepare_serial_log(spec_.serial_log);
        tail_.emplace(strand_, spec_.serial_log);
    } catch (const std::exception& e) {
        set_state(state::failed{.reason = std::string("preparing the VM failed: ") + e.what()},
                  "start failed");
        throw;
    }
    asio::co_spawn(strand_, follow_serial(), asio::detached);

    launch_context ctx;
    ctx.executor = strand_;
    ctx.run_dir = run_dir_;
    ctx.restore_from = restore_.dir;
    std::weak_ptr<vm_actor> weak = self;
    ctx.note = [weak](std::string text) {
        if (auto a = weak.lock()) a->note(std::move(text));
    };

    std::shared_ptr<vm_instance> inst;
    try {
        inst = co_await driver_->launch(spec_, std::move(ctx));
        if (nics_) nics_->vm_ends.clear();  // the VMM holds its own copies now
    } catch (const error& e) {
        nics_.reset();
        if (tail_) tail_->close();
        exited_ = true;
        auto reason = std::string("launch failed: ") + e.what();
        if (!e.diag().vmm_stderr_tail.empty()) reason += "; VMM output: " + e.diag().vmm_stderr_tail;
        set_state(state::failed{.reason = reason, .serial_tail = serial_tail()}, "start failed");
        throw;
    } catch (const std::exception& e) {
        nics_.reset();
        if (tail_) tail_->close();
        exited_ = true;
        set_state(
            state::failed{.reason = std::string("launch failed: ") + e.what(), .serial_tail = serial_tail()},
            "start failed");
        throw error(make_error_code(errc::vmm_start_failed), {.message = e.what()});
    }
    instance_ = inst;
    {
        std::lock_guard lock(snapshot_mutex_);
        snapshot_.vmm = inst->vmm_identity();
        snapshot_.control_socket = inst->control_socket();
    }
    std::string reason = "VMM started";
    if (auto id = inst->vmm_identity()) reason += " (pid " + std::to_string(id->pid) + ")";
    set_state(state::running{}, reason);
    write_state_file();
    asio::co_spawn(strand_, supervise(inst), asio::detached);

    // A restored guest goes on from where it was saved; it does not boot, so it will not print its
    // ready line again.
    if (!restore_.dir.empty() && restore_.ready_ip)
        set_state(state::ready{restore_.ready_ip->empty() ? std::nullopt : restore_.ready_ip},
                  "restored from " + restore_.dir.string() + " (the guest was ready when saved)");

    // A ready line can arrive while the launch is still being confirmed: apply it now.
    if (ready_seen_while_starting_ && ready_ip_ && !stop_requested_ && !kill_requested_)
        set_state(state::ready{*ready_ip_ == "" ? std::nullopt : ready_ip_}, "VMRS_READY seen on serial");
    co_return snapshot();
}

asio::awaitable<void> vm_actor::supervise(std::shared_ptr<vm_instance> inst) {
    auto self = shared_from_this();
    exit_status status;
    try {
        status = co_await inst->wait_exit();
    } catch (const std::exception& e) {
        // The wait itself failed: the instance can no longer be supervised. Make sure nothing runs.
        inst->kill();
        status = exit_status{.signaled = true, .signal = SIGKILL};
        note(std::string("lost supervision of the VMM: ") + e.what());
    }
    exited_ = true;
    hot_devices_.clear();  // hot-plugged devices last one run
    nics_.reset();         // the switch ports go with the VM
    finish(status);
    if (tail_) tail_->close();
    instance_.reset();  // releases sidecars and sockets now; stop() holds its own reference if running
    write_state_file();
}

void vm_actor::finish(const exit_status& status) {
    if (stop_requested_ || kill_requested_) {
        auto outcome = signalled_         ? stop_outcome::forced
                       : status.success() ? stop_outcome::clean
                                          : stop_outcome::crashed;
        std::string reason = kill_requested_ ? "killed"
                             : signalled_    ? "stop forced (the guest did not power off in time)"
                                             : "guest powered off";
        set_state(state::stopped{outcome, status}, reason + " (" + status.to_string() + ")");
    } else if (status.success()) {
        set_state(state::stopped{stop_outcome::clean, status}, "guest powered off by itself");
    } else {
        auto tail = serial_tail();
        std::string reason = "VMM exited unexpectedly (" + status.to_string() + ")";
        for (auto it = tail.rbegin(); it != tail.rend(); ++it)
            if (it->find("Kernel panic") != std::string::npos) {
                reason += ": " + *it;
                break;
            }
        if (instance_) {
            auto log = instance_->vmm_log_tail();
            if (!log.empty()) reason += "; VMM output: " + log;
        }
        set_state(state::failed{reason, status, std::move(tail)}, "VMM crashed");
    }
}

stop_outcome vm_actor::final_outcome() const {
    if (auto* s = std::get_if<state::stopped>(&state_)) return s->outcome;
    return stop_outcome::crashed;  // Failed: the VMM died on its own during the stop
}

asio::awaitable<void> vm_actor::follow_serial() {
    auto self = shared_from_this();
    for (;;) {
        if (!tail_) co_return;
        auto [ec, chunk] = co_await tail_->async_read(asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        if (chunk.reset) {
            parser_.reset();
            note("serial log was truncated or replaced; readiness parsing restarted");
        }
        if (!console_seen_ && !chunk.data.empty()) {
            console_seen_ = true;
            note("first console output");
        }
        for (auto& ev : parser_.feed(chunk.data)) on_serial_event(ev);
    }
}

void vm_actor::on_serial_event(const io::serial_event& ev) {
    if (exited_) return;
    switch (ev.what) {
    case io::serial_event::kind::ready:
        ready_ip_ = ev.ip.value_or("");
        if (std::holds_alternative<state::running>(state_) || std::holds_alternative<state::ready>(state_))
            set_state(state::ready{ev.ip && !ev.ip->empty() ? ev.ip : std::nullopt},
                      "VMRS_READY seen on serial");
        else if (std::holds_alternative<state::starting>(state_))
            ready_seen_while_starting_ = true;
        break;
    case io::serial_event::kind::reboot:
        ready_ip_.reset();
        if (std::holds_alternative<state::ready>(state_))
            set_state(state::running{}, "guest rebooted (kernel banner on serial): readiness cleared");
        else
            note("guest rebooted (kernel banner on serial)");
        break;
    case io::serial_event::kind::kernel_panic:
        note("kernel panic on serial: " + ev.line);
        break;
    }
}

std::vector<std::string> vm_actor::serial_tail() const {
    // Read the file itself: at exit, the tail may not have delivered the last bytes yet.
    auto text = io::read_file_tail(spec_.serial_log, 16384);
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        auto end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(start, end - start);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty()) lines.push_back(std::move(line));
        start = end + 1;
    }
    if (lines.size() > opts_.serial_tail_lines)
        lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(opts_.serial_tail_lines));
    return lines;
}

asio::awaitable<bool> vm_actor::wait_for_exit(duration limit) {
    auto deadline = steady_clock::now() + limit;
    while (!exited_) {
        auto now = steady_clock::now();
        if (now >= deadline) co_return false;
        auto [ec] = co_await io::with_timeout(state_changed_.async_wait(asio::deferred), deadline - now);
        if (ec == errc::timeout) co_return exited_;
    }
    co_return true;
}

asio::awaitable<bool> vm_actor::wait_while_starting(duration limit) {
    auto deadline = steady_clock::now() + limit;
    while (std::holds_alternative<state::starting>(state_)) {
        auto now = steady_clock::now();
        if (now >= deadline) co_return false;
        auto [ec] = co_await io::with_timeout(state_changed_.async_wait(asio::deferred), deadline - now);
        if (ec == errc::timeout && std::holds_alternative<state::starting>(state_)) co_return false;
    }
    co_return true;
}

asio::awaitable<stop_outcome> vm_actor::stop(duration deadline) {
    auto self = shared_from_this();
    if (!co_await wait_while_starting(deadline))
        throw error(make_error_code(errc::timeout), {.message = "the VM is still starting"});
    if (is_terminal(state_)) co_return stop_outcome::already_stopped;
    if (stop_requested_ || kill_requested_) {  // a stop is already under way: join it
        while (!is_terminal(state_)) co_await wait_for_exit(opts_.term_grace + opts_.kill_grace + deadline);
        co_return final_outcome();
    }
    auto inst = instance_;  // keeps the instance alive across the waits below
    const bool was_paused = std::holds_alternative<state::paused>(state_);
    stop_requested_ = true;
    set_state(state::stopping{}, "graceful stop requested");

    bool delivered = false;
    try {
        if (was_paused) co_await inst->resume();  // a frozen guest cannot see the power button
        co_await inst->request_powerdown();
        delivered = true;
    } catch (const std::exception& e) {
        if (!exited_) note(std::string("power button not delivered (") + e.what() + "): terminating the VMM");
    }
    if (delivered && co_await wait_for_exit(deadline)) co_return final_outcome();
    if (!exited_) {
        // The VMM's own hard stop (CH: vmm.shutdown) comes before signals: the VMM ends the VM in
        // order (devices flushed, sockets removed). Backends without one go straight to SIGTERM.
        signalled_ = true;
        if (co_await inst->request_vmm_exit() && co_await wait_for_exit(opts_.term_grace))
            co_return final_outcome();
    }
    if (!exited_) {
        note("guest did not power off in time: sending SIGTERM to the VMM");
        signalled_ = true;
        inst->terminate();
        if (co_await wait_for_exit(opts_.term_grace)) co_return final_outcome();
        note("VMM ignored SIGTERM: sending SIGKILL");
        inst->kill();
        if (co_await wait_for_exit(opts_.kill_grace)) co_return final_outcome();
    }
    if (exited_) co_return final_outcome();
    throw error(make_error_code(errc::stop_failed), {.message = "the VMM survived SIGKILL"});
}

asio::awaitable<stop_outcome> vm_actor::kill() {
    auto self = shared_from_this();
    if (!co_await wait_while_starting(opts_.kill_grace))
        throw error(make_error_code(errc::timeout), {.message = "the VM is still starting"});
    if (is_terminal(state_)) co_return stop_outcome::already_stopped;
    auto inst = instance_;
    kill_requested_ = true;
    signalled_ = true;
    if (!std::holds_alternative<state::stopping>(state_)) set_state(state::stopping{}, "kill requested");
    inst->kill();
    if (co_await wait_for_exit(opts_.kill_grace)) co_return final_outcome();
    throw error(make_error_code(errc::stop_failed), {.message = "the VMM survived SIGKILL"});
}

asio::awaitable<vm_state> vm_actor::set_paused(bool pause) {
    auto self = shared_from_this();
    auto inst = instance_;
    if (pause) {
        if (!is_running(state_) || !inst)
            throw error(make_error_code(errc::invalid_state),
                        {.message = "cannot pause a VM that is " + std::string(state_name(state_))});
        co_await inst->pause();
        if (exited_)
            throw error(make_error_code(errc::invalid_state), {.message = "the VM ended while pausing"});
        set_state(state::paused{}, "paused");
    } else {
        if (!std::holds_alternative<state::paused>(state_) || !inst)
            throw error(make_error_code(errc::invalid_state),
                        {.message = "cannot resume a VM that is " + std::string(state_name(state_))});
        co_await inst->resume();
        if (exited_)
            throw error(make_error_code(errc::invalid_state), {.message = "the VM ended while resuming"});
        if (ready_ip_)
            set_state(state::ready{ready_ip_->empty() ? std::nullopt : ready_ip_}, "resumed");
        else
            set_state(state::running{}, "resumed");
    }
    co_return state_;
}

asio::awaitable<vm_state> vm_actor::save_snapshot(std::filesystem::path dir) {
    auto self = shared_from_this();
    auto inst = instance_;
    if (!inst || !(is_running(state_) || std::holds_alternative<state::paused>(state_)))
        throw error(make_error_code(errc::invalid_state),
                    {.message = "cannot snapshot a VM that is " + std::string(state_name(state_))});
    std::error_code fs_ec;
    std::filesystem::create_directories(dir, fs_ec);
    if (fs_ec || !std::filesystem::is_empty(dir, fs_ec))
        throw error(make_error_code(errc::invalid_state),
                    {.message = "a snapshot needs a new or empty directory: " + dir.string()});
    const auto saved_ready = ready_ip_;
    co_await inst->save_snapshot(dir);
    // What restore needs besides the machine state: the spec, and whether the guest was ready.
    auto spec_json = boost::json::parse(spec_to_json(spec_));
    boost::json::object meta;
    meta["spec"] = std::move(spec_json);
    if (saved_ready)
        meta["ready_ip"] = *saved_ready;
    else
        meta["ready_ip"] = nullptr;
    io::write_file_atomically(dir / "vm.json", boost::json::serialize(meta) + "\n");
    set_state(state::paused{}, "snapshot saved to " + dir.string());
    co_return state_;
}

asio::awaitable<std::uint64_t> vm_actor::resize_balloon(std::uint64_t target_mib) {
    auto self = shared_from_this();
    auto inst = instance_;
    if (!is_running(state_) || !inst)
        throw error(
            make_error_code(errc::invalid_state),
            {.message = "cannot resize the balloon of a VM that is " + std::string(state_name(state_))});
    if (!spec_.balloon)
        throw error(
            make_error_code(errc::unsupported),
            {.message = "the VM has no balloon device (set \"balloon\" in its spec)", .field = "balloon"});
    if (target_mib == 0 || target_mib > spec_.memory_mib)
        throw error(make_error_code(errc::invalid_spec),
                    {.message = "a balloon target must be between 1 and memory_mib (" +
                                std::to_string(spec_.memory_mib) + ") MiB"});
    auto actual = co_await inst->resize_balloon(target_mib);
    note("balloon: the guest now has " + std::to_string(actual) + " MiB");
    co_return actual;
}

asio::awaitable<std::uint32_t> vm_actor::resize_vcpus(std::uint32_t count) {
    auto self = shared_from_this();
    auto inst = instance_;
    if (!is_running(state_) || !inst)
        throw error(
            make_error_code(errc::invalid_state),
            {.message = "cannot change the vCPUs of a VM that is " + std::string(state_name(state_))});
    if (!spec_.max_cpus || *spec_.max_cpus == spec_.cpus)
        throw error(make_error_code(errc::unsupported),
                    {.message = "the VM has no room for more vCPUs (set \"max_cpus\" in its spec)",
                     .field = "max_cpus"});
    if (count == 0 || count > *spec_.max_cpus)
        throw error(make_error_code(errc::invalid_spec),
                    {.message = "a vCPU count must be between 1 and max_cpus (" +
                                std::to_string(*spec_.max_cpus) + "), found " + std::to_string(count),
                     .field = "cpus"});
    auto now = co_await inst->resize_vcpus(count);
    note("vCPUs: the VM now has " + std::to_string(now));
    co_return now;
}

void vm_actor::abandon() {
    asio::post(strand_, [self = shared_from_this()] {
        if (self->exited_ || !self->instance_) return;
        self->kill_requested_ = true;
        self->signalled_ = true;
        self->instance_->kill();
    });
}

void vm_actor::write_state_file() const {
    // The per-VM record a restarted manager (or an operator) reads to find what this VM left.
    boost::json::object o;
    o["name"] = spec_.name;
    o["namespace"] = spec_.namespace_;
    o["backend"] = std::string(driver_->name());
    o["state"] = state_name(state_);
    o["serial_log"] = spec_.serial_log.string();
    if (auto id = snapshot().vmm) {
        o["pid"] = id->pid;
        o["start_time_ticks"] = id->start_time_ticks;
    }
    error_code ec;
    io::write_file_atomically(run_dir_ / "state.json", boost::json::serialize(o) + "\n",
                              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, ec);
}

}  // namespace vmrt::detail
