mod binary;
mod hostkey;
