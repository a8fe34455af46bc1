// A move-only, type-erased callable: what std::function would be if it accepted move-only
// callables (C++23's std::move_only_function, which GCC 12 / C++20 do not have). Work handed to a
// serial queue owns what it captures (handlers, promises, unique_ptrs), so it cannot be copyable.
#pragma once

#include <concepts>
#include <cstddef>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace vmrt::detail {

/// A callable (not the unique_function itself) that can be stored by value and called as R(Args...).
template <typename F, typename Self, typename R, typename... Args>
concept erasable_callable =
    !std::same_as<std::remove_cvref_t<F>, Self> && std::is_invocable_r_v<R, std::decay_t<F>&, Args...> &&
    std::constructible_from<std::decay_t<F>, F>;

template <typename Signature>
class unique_function;

template <typename R, typename... Args>
class unique_function<R(Args...)> {
public:
    unique_function() noexcept = default;
    unique_function(std::nullptr_t) noexcept {}

    template <erasable_callable<unique_function, R, Args...> F>
    unique_function(F&& f)  // implicit, like std::function's
        : callable_(std::make_unique<holder<std::decay_t<F>>>(std::forward<F>(f))) {}

    unique_function(unique_function&&) noexcept = default;
    unique_function& operator=(unique_function&&) noexcept = default;
    unique_function(const unique_function&) = delete;
    unique_function& operator=(const unique_function&) = delete;

    unique_function& operator=(std::nullptr_t) noexcept {
        callable_.reset();
        return *this;
    }

    explicit operator bool() const noexcept { return static_cast<bool>(callable_); }

    /// Calls the target; throws std::bad_function_call when empty.
    R operator()(Args... args) {
        if (!callable_) throw std::bad_function_call();
        return callable_->call(std::forward<Args>(args)...);
    }

private:
    struct callable {
        virtual ~callable() = default;
        virtual R call(Args&&... args) = 0;
    };

    template <typename F>
    struct holder final : callable {
        template <typename G>
        explicit holder(G&& g) : f(std::forward<G>(g)) {}
        R call(Args&&... args) override {
            // For a void signature a returned value is dropped, as std::function does.
            if constexpr (std::is_void_v<R>)
                std::invoke(f, std::forward<Args>(args)...);
            else
                return std::invoke(f, std::forward<Args>(args)...);
        }
        F f;
    };

    std::unique_ptr<callable> callable_;
};

}  // namespace vmrt::detail
