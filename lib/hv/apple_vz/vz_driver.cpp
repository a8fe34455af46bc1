#include "hv/apple_vz/vz_driver.hpp"

#include "hex_text.hpp"
#include "hv/apple_vz/objc/message.hpp"
#include "hv/apple_vz/vz_configuration.hpp"
#include "hv/apple_vz/vz_control.hpp"
#include "hv/apple_vz/vz_instance.hpp"
#include "hv/apple_vz/vz_plan.hpp"

#include <fstream>

namespace vmrt::hv {

namespace {

namespace asio = boost::asio;
using namespace vz;

// The identifier a snapshot recorded beside its save file (vz_instance::save_snapshot), if any.
std::optional<std::vector<std::uint8_t>> saved_machine_identifier(const std::filesystem::path& dir) {
    std::ifstream in(dir / machine_identifier_file_name);
    std::string text;
    if (!(in >> text) || text.empty()) return std::nullopt;
    return detail::parse_hex_bytes(text);
}

class apple_vz_driver final : public driver {
public:
    explicit apple_vz_driver(vz_driver_options opts) : opts_(opts), caps_(vz_capabilities()) {}

    std::string_view name() const noexcept override { return "apple-vz"; }
    const capability_set& capabilities() const noexcept override { return caps_; }

    std::optional<spec_error> check_spec(const vm_spec& spec) const override {
        // The run directory only names files the plan would create; any path serves to check.
        auto plan = make_vz_plan(spec, "run");
        if (!plan) return plan.error();
        // What the running framework lacks is refused here too, before anything starts.
        try {
            check_vz_availability(*plan);
        } catch (const error& e) {
            return spec_error{e.diag().field, e.diag().message.empty() ? e.what() : e.diag().message};
        }
        return std::nullopt;
    }

    asio::awaitable<std::unique_ptr<vm_instance>> launch(const vm_spec& requested,
                                                         launch_context ctx) override {
        vm_spec spec = requested;
        const bool restoring = !ctx.restore_from.empty();
        if (restoring) {
            if (!save_restore_available())
                throw error(make_error_code(errc::unsupported),
                            {.message = "restoring a VM needs macOS 14 on Apple silicon: this "
                                        "Virtualization.framework has no "
                                        "-[VZVirtualMachine restoreMachineStateFromURL:completionHandler:]"});
            // The saved machine had an identity made for its boot: the restored one must be it.
            if (!spec.machine_id)
                if (auto saved = saved_machine_identifier(ctx.restore_from))
                    spec.machine_id = std::move(*saved);
        }
        auto plan = make_vz_plan(spec, ctx.run_dir);
        if (!plan)
            throw error(make_error_code(errc::unsupported),
                        {.message = plan.error().message, .field = plan.error().field});
        objc::Class vm_class = objc::cls("VZVirtualMachine");
        if (!vm_class)
            throw error(make_error_code(errc::unsupported),
                        {.message = "Virtualization.framework is not available (no VZVirtualMachine class)"});
        // "If virtualization is unavailable, no VZVirtualMachineConfiguration will validate": say so
        // plainly first.
        if (!objc::send<objc::BOOL>(vm_class, objc::sel<"isSupported">()))
            throw error(
                make_error_code(errc::unsupported),
                {.message = "this Mac cannot run virtual machines (+[VZVirtualMachine isSupported] is NO)"});

        auto instance = std::make_unique<vz_instance>(ctx.executor, spec.name, opts_, ctx.note);
        vz_build_resources resources;
        io::unique_fd control_vm_end;  // the configuration keeps a duplicate (vz_configuration.hpp)
        if (plan->control) {
            auto opened = vz_control_relay::open(ctx.executor, plan->control->socket);
            control_vm_end = std::move(opened.second);
            resources.control_port_fd = control_vm_end.get();
            instance->set_control_relay(std::move(opened.first));
        }
        auto config = build_vz_configuration(*plan, resources);
        control_vm_end.reset();
        co_await finish_launch(*instance, *plan, std::move(config), ctx, restoring);
        co_return instance;
    }

private:
    asio::awaitable<void> finish_launch(vz_instance& instance, const vz_plan& plan, vz_configuration config,
                                        const launch_context& ctx, bool restoring) {
        if (config.identifier_origin == machine_identifier_origin::fresh) {
            instance.set_identity({.fresh_machine_identifier = config.machine_identifier});
            if (ctx.note)
                ctx.note("machine identifier made for this boot (pin it with \"machine_id\" for a stable "
                         "identity): " +
                         detail::hex_string(config.machine_identifier));
        }
        co_await instance.create(std::move(config.configuration));
        if (restoring) {
            auto save_file = ctx.restore_from / save_file_name;
            co_await instance.restore(std::move(save_file));
        } else
            co_await instance.start();
        if (plan.balloon && plan.balloon->target_after_start_bytes && !restoring) {
            const auto kept = co_await instance.set_balloon_target(*plan.balloon->target_after_start_bytes);
            if (ctx.note) ctx.note("balloon: the guest starts with " + std::to_string(kept >> 20) + " MiB");
        }
    }

    vz_driver_options opts_;
    capability_set caps_;
};

}  // namespace

std::shared_ptr<driver> make_apple_vz_driver(vz_driver_options opts) {
    return std::make_shared<apple_vz_driver>(opts);
}

}  // namespace vmrt::hv
