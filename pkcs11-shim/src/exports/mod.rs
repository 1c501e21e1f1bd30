//! The exported PKCS#11 functions, one module per function family.
//!
//! Every function here is `#[no_mangle]`, runs behind [`crate::boundary::guard`], forwards
//! its arguments untouched to the vendor and records one event. Only scalars are recorded:
//! the function, the return value, timing, and where the call carries one, the mechanism
//! type or user type.

pub mod crypto;
pub mod general;
pub mod keys;
pub mod message;
pub mod object;
pub mod session;
pub mod slot;

pub use crypto::*;
pub use general::*;
pub use keys::*;
pub use message::*;
pub use object::*;
pub use session::*;
pub use slot::*;

/// Defines forwarding exports. `mechanism = arg` records the type of the `CK_MECHANISM`
/// `arg` points at; `mechanism_type = arg` records a `CK_MECHANISM_TYPE` passed by value;
/// `user = arg` records a `CK_USER_TYPE` argument.
macro_rules! forward {
    ($(
        $name:ident => $id:ident ( $( $arg:ident : $ty:ty ),* $(,)? )
        $( mechanism = $mech:ident )? $( mechanism_type = $mech_type:ident )?
        $( user = $user:ident )?;
    )*) => {$(
        #[doc = concat!("`", stringify!($name), "`, forwarded to the vendor and recorded.")]
        ///
        /// # Safety
        /// The caller keeps the PKCS#11 contract of this function; the arguments reach the
        /// vendor module untouched and the shim itself dereferences none of them, except
        /// a mechanism's type field once the vendor has proved it valid.
        #[no_mangle]
        pub unsafe extern "C" fn $name( $( $arg: $ty ),* ) -> cryptoki_sys::CK_RV {
            crate::boundary::guard(|| {
                let mut call = crate::recorder::Call::start(normalizer::FunctionId::$id);
                let rv = match call.admit().and_then(|()| crate::vendor::function(|f| f.$name)) {
                    Ok(f) => {
                        call.begin();
                        // SAFETY: same arguments, same contract, the vendor's own function.
                        unsafe { f( $( $arg ),* ) }
                    }
                    Err(rv) => rv,
                };
                #[allow(unused_mut)]
                let mut scalars = crate::recorder::Scalars::NONE;
                $( scalars.mechanism = unsafe { crate::recorder::mechanism_type($mech, rv) }; )?
                // A scalar argument: recorded whatever the vendor answered.
                $( scalars.mechanism = Some($mech_type as u64); )?
                $( scalars.user_type = Some($user as u64); )?
                call.finish(rv, scalars)
            })
        }
    )*};
}
pub(crate) use forward;
