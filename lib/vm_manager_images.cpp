// vm_manager's image pulls: image::pull_image into the manager's store, its progress published as
// transfer events on the manager's event stream.
#include "vm_actor.hpp"

#include <vmrt/detail/async_op.hpp>
#include <vmrt/vm_manager.hpp>

#include <boost/asio/strand.hpp>

#include <map>

namespace vmrt {

namespace asio = boost::asio;

namespace {

asio::awaitable<std::pair<error_code, image::pulled_image>>
pull_with_events(std::shared_ptr<detail::manager_shared> shared, std::filesystem::path store_dir,
                 std::string reference, image::pull_options options) {
    auto ref = image::parse_image_reference(reference);
    const std::string subject = "image:" + ref.to_string();
    image::oci_store store(store_dir);
    // A few events per blob: when it starts, at every tenth, when it is done.
    auto last_tenth = std::make_shared<std::map<std::string, int>>();
    auto user_progress = options.progress;
    options.progress = [shared, subject, last_tenth, user_progress](const image::pull_progress& p) {
        if (user_progress) user_progress(p);
        const int tenth = p.total ? static_cast<int>(p.done * 10 / p.total) : 10;
        auto [it, fresh] = last_tenth->try_emplace(p.digest, -1);
        if (!fresh && !p.finished && tenth == it->second) return;
        it->second = tenth;
        transfer_progress t{.object = p.digest,
                            .what = p.kind,
                            .done = p.done,
                            .total = p.total,
                            .finished = p.finished,
                            .cached = p.cached};
        shared->publish(subject, event_kind::transfer, state::running{}, "", t);
    };
    auto pulled = co_await image::pull_image(store, ref, options);
    shared->publish(subject, event_kind::note, state::running{},
                    "pulled: manifest " + pulled.manifest_digest + ", " +
                        std::to_string(pulled.blobs_downloaded) + " blobs downloaded, " +
                        std::to_string(pulled.blobs_cached) + " already stored");
    co_return std::pair{error_code{}, std::move(pulled)};
}

}  // namespace

void vm_manager::pull_impl(std::string reference, image::pull_options options,
                           asio::any_completion_handler<void(error_code, image::pulled_image)> h) {
    // A strand of its own: a pull's coroutines (parallel blobs) must not run on two threads at once.
    detail::run_op<image::pulled_image>(
        asio::make_strand(ex_),
        pull_with_events(shared_, opts_.image_store, std::move(reference), std::move(options)), std::move(h));
}

}  // namespace vmrt
