//! The shop pages' one style sheet, apart so that `pages` can list it
//! among the sheets the CSP allows without importing the shop's pages.

/// The shop pages' style sheet (allowed by hash in the CSP).
pub const SHOP_CSS: &str = "\
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,'PingFang SC','Noto Sans CJK SC',sans-serif;color:#1b1b1b;background:#f4f5f7}\
main{max-width:34rem;margin:0 auto;padding:0 0 2rem}\
.band{color:#fff;padding:1rem 1.25rem}.band h2{margin:0;font-size:1.7rem}.band p{margin:.25rem 0 0}\
.green{background:#1e7e3e}.yellow{background:#f2b705;color:#1b1b1b}.red{background:#c62119}.gray{background:#5a5f66}\
section{background:#fff;margin:.75rem;padding:.9rem 1rem;border-radius:.5rem;overflow-wrap:anywhere}\
h1{font-size:1.3rem;margin:.1rem 0}h3{margin:.2rem 0 .4rem;font-size:1.05rem}\
ul{margin:.2rem 0;padding-left:1.2rem}li{margin:.4rem 0}.muted{color:#5a5f66;font-size:.9rem}\
.ok{background:#e6f4ea;border-left:4px solid #1e7e3e;padding:.6rem .8rem}.warn{background:#fde8e7;border-left:4px solid #c62119;padding:.6rem .8rem}\
label{display:block;margin:.5rem 0 .2rem;font-weight:600}\
input,select,textarea{width:100%;font:inherit;padding:.5rem;border:1px solid #b8bcc2;border-radius:.35rem;background:#fff}\
input[type=checkbox]{width:auto;margin-right:.4rem}textarea{min-height:5rem}\
button{display:block;width:100%;margin-top:.7rem;padding:.7rem;font:inherit;font-weight:600;color:#fff;background:#0b57d0;border:0;border-radius:.4rem}\
details{margin:.4rem 0}summary{color:#0b57d0;cursor:pointer}a{color:#0b57d0}";
