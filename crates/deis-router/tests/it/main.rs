mod binary;
mod routing;
